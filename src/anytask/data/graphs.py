"""Graphs as PyTorch Geometric ``Data`` objects: the shared Planetoid and TU sets, any ``.npz`` or TU folder a
user has, and PyG ``Data`` given directly (needs the ``graph`` extra: ``pip install 'anytask[graph]'``).

``load_graphs(spec)`` returns a ``GraphSet``: one graph with node labels and a split (``cora``, ``citeseer``,
a Planetoid-style ``.npz``) or many graphs with a label each (``mutag``, ``proteins``, a TU folder).

Every graph passes ``clean_graph``, which documents what it changes rather than changing it silently:
an edge index out of range or of the wrong shape is an error; self-loops and duplicate edges are dropped and
every edge is listed in both directions (the message passing here is undirected); the counts are kept in
``GraphSet.notes``. A graph without edges is allowed (encoders then see each node alone); link prediction
on it is an error. CiteSeer's 15 label-missing nodes stay in the graph (they carry edges) and are in no split
(``label_mask`` is False for them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.extras import require

PLANETOID = ("cora", "citeseer")
TU = {"mutag": "MUTAG", "proteins": "PROTEINS"}


def _pyg():
    return require("torch_geometric", "graph", "graph data")


@dataclass
class GraphSet:
    """Graphs and what they are for. ``level`` is ``"node"`` (one graph, labels per node, ``train_mask`` /
    ``val_mask`` / ``test_mask`` / ``label_mask`` on it) or ``"graph"`` (many graphs, ``y`` one label each)."""

    name: str
    graphs: list
    level: str
    classes: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return int(self.graphs[0].num_features)

    @property
    def labels(self) -> np.ndarray:
        """Node labels of the one graph (``level='node'``) or one label per graph (``level='graph'``)."""
        if self.level == "node":
            return self.graphs[0].y.numpy()
        return np.array([int(g.y) for g in self.graphs])

    def __len__(self) -> int:
        return len(self.graphs)


def clean_graph(edge_index, num_nodes: int, *, name: str = "graph"):
    """``(edge_index, notes)``: validated, undirected (both directions), without self-loops or duplicates."""
    import torch

    _pyg()
    from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

    ei = torch.as_tensor(np.asarray(edge_index), dtype=torch.long) if not isinstance(edge_index, torch.Tensor) \
        else edge_index.long()
    if ei.numel() == 0:
        return torch.zeros((2, 0), dtype=torch.long), {"edges": 0, "self_loops_removed": 0, "duplicates_removed": 0}
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise AnytaskError(f"{name}: edge_index must have shape (2, E), got {tuple(ei.shape)}; transpose an "
                           "(E, 2) edge list")
    if int(ei.min()) < 0 or int(ei.max()) >= num_nodes:
        bad = int(ei.max()) if int(ei.max()) >= num_nodes else int(ei.min())
        raise AnytaskError(f"{name}: edge_index refers to node {bad} but the graph has {num_nodes} nodes "
                           f"(ids 0..{num_nodes - 1}); are the ids 1-based?")
    loops = int((ei[0] == ei[1]).sum())
    ei, _ = remove_self_loops(ei)
    before = ei.shape[1]
    directed = coalesce(ei, num_nodes=num_nodes).shape[1]
    ei = to_undirected(ei, num_nodes=num_nodes)
    return ei, {"edges": int(ei.shape[1]), "self_loops_removed": loops, "duplicates_removed": before - directed}


def from_arrays(features, edge_index, labels=None, *, name: str = "graph", **masks):
    """A validated PyG ``Data`` from numpy arrays (``masks``: boolean node masks such as ``train_mask``)."""
    import torch

    pyg = _pyg()
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or not len(x):
        raise AnytaskError(f"{name}: features must be a non-empty (N, F) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AnytaskError(f"{name}: features contain NaN or infinity")
    ei, notes = clean_graph(edge_index, len(x), name=name)
    data = pyg.data.Data(x=torch.from_numpy(x), edge_index=ei)
    if labels is not None:
        y = np.asarray(labels)
        if len(y) != len(x):
            raise AnytaskError(f"{name}: {len(y)} labels for {len(x)} nodes")
        data.y = torch.as_tensor(y, dtype=torch.long)
    for key, mask in masks.items():
        data[key] = torch.as_tensor(np.asarray(mask, dtype=bool))
    return data, notes


def _mask(n: int, idx) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[np.asarray(idx, dtype=np.int64)] = True
    return m


def load_planetoid(path: str | os.PathLike, name: str | None = None) -> GraphSet:
    """A Planetoid-style ``.npz``: ``features``, ``edge_index`` and optionally ``labels``, ``train_idx`` /
    ``val_idx`` / ``test_idx`` and ``label_missing`` (the shared Cora and CiteSeer files have all of them)."""
    path = Path(path)
    name = name or path.stem
    try:
        z = np.load(path)
    except (OSError, ValueError) as e:
        raise AnytaskError(f"cannot read {path} as a .npz graph: {e}") from e
    missing = [k for k in ("features", "edge_index") if k not in z.files]
    if missing:
        raise AnytaskError(f"{path} has no {', '.join(missing)}; a graph .npz needs features (N, F) and "
                           f"edge_index (2, E) (it has: {', '.join(z.files)})")
    n = len(z["features"])
    labels = z["labels"] if "labels" in z.files else None
    masks = {}
    if labels is not None:
        label_mask = ~z["label_missing"].astype(bool) if "label_missing" in z.files else np.ones(n, bool)
        masks["label_mask"] = label_mask
        for split in ("train", "val", "test"):
            if f"{split}_idx" in z.files:
                m = _mask(n, z[f"{split}_idx"]) & label_mask  # label-missing nodes are in no split
                masks[f"{split}_mask"] = m
    data, notes = from_arrays(z["features"], z["edge_index"], labels, name=name, **masks)
    classes = sorted({int(v) for v in labels[masks["label_mask"]]}) if labels is not None else []
    return GraphSet(name, [data], "node", classes, notes)


def load_tu(folder: str | os.PathLike, name: str | None = None) -> GraphSet:
    """A TU Dortmund folder (``DS_A.txt``, ``DS_graph_indicator.txt``, ``DS_graph_labels.txt``, optional
    ``DS_node_labels.txt`` / ``DS_node_attributes.txt``): node features are the node labels one-hot, then the
    node attributes; graph labels are mapped to 0..C-1 in sorted order (MUTAG's -1/1 become 0/1)."""
    import torch

    folder = Path(folder)
    found = sorted(folder.glob("*_A.txt"))
    if not found:
        raise AnytaskError(f"{folder} is not a TU folder: no DS_A.txt (see https://chrsmrrs.github.io/datasets/)")
    ds = found[0].name[:-len("_A.txt")]
    name = name or ds.lower()

    def read(suffix, dtype=np.int64, required=True):
        p = folder / f"{ds}_{suffix}.txt"
        if not p.is_file():
            if required:
                raise AnytaskError(f"{folder}: {p.name} is missing")
            return None
        return np.loadtxt(p, delimiter=",", dtype=dtype, ndmin=1)

    indicator = read("graph_indicator") - 1
    graph_labels = read("graph_labels")
    edges = np.loadtxt(folder / f"{ds}_A.txt", delimiter=",", dtype=np.int64, ndmin=2) - 1
    n = len(indicator)
    feats = []
    node_labels = read("node_labels", required=False)
    if node_labels is not None:
        values = np.unique(node_labels)
        feats.append((node_labels[:, None] == values[None, :]).astype(np.float32))
    attrs = read("node_attributes", np.float32, required=False)
    if attrs is not None:
        feats.append(attrs.reshape(n, -1).astype(np.float32))
    x = np.concatenate(feats, 1) if feats else np.ones((n, 1), np.float32)
    classes = sorted(np.unique(graph_labels).tolist())
    y = np.searchsorted(classes, graph_labels)
    if edges.min() < 0 or edges.max() >= n:
        raise AnytaskError(f"{folder}: {ds}_A.txt refers to node {edges.max() + 1}, but there are {n} nodes")
    if len(indicator) and indicator.max() + 1 != len(graph_labels):
        raise AnytaskError(f"{folder}: {indicator.max() + 1} graphs in the indicator, {len(graph_labels)} labels")
    start = np.searchsorted(indicator, np.arange(len(graph_labels)))
    graphs, totals = [], {"self_loops_removed": 0, "duplicates_removed": 0}
    g_of_edge = indicator[edges[:, 0]]
    if (g_of_edge != indicator[edges[:, 1]]).any():
        raise AnytaskError(f"{folder}: an edge joins two different graphs")
    order = np.argsort(g_of_edge, kind="stable")
    edges, g_of_edge = edges[order], g_of_edge[order]
    bounds = np.searchsorted(g_of_edge, np.arange(len(graph_labels) + 1))
    for g in range(len(graph_labels)):
        lo = start[g]
        hi = start[g + 1] if g + 1 < len(graph_labels) else n
        e = edges[bounds[g]:bounds[g + 1]] - lo
        data, notes = from_arrays(x[lo:hi], e.T, name=f"{name} graph {g}")
        data.y = torch.tensor([int(y[g])])
        graphs.append(data)
        for k in totals:
            totals[k] += notes[k]
    return GraphSet(name, graphs, "graph", [int(c) for c in classes], totals)


def shared_graph_root() -> Path | None:
    from anytask.data.sources import shared_data_root

    root = shared_data_root()
    return root / "graph" if root is not None and (root / "graph").is_dir() else None


def load_graphs(spec, *, data_root=None) -> GraphSet:
    """A ``GraphSet`` from a name of the shared data (``cora``, ``citeseer``, ``mutag``, ``proteins``, found under
    ``data_root``/graph, ``$ANYTASK_SHARED_DATA``/graph or ``../shared/data/graph``), a ``.npz`` file, a TU
    folder, a ``GraphSet``, or PyG ``Data`` (one, or a list of them)."""
    if isinstance(spec, GraphSet):
        return spec
    pyg = _pyg()
    if isinstance(spec, pyg.data.Data):
        spec = [spec]
    if isinstance(spec, (list, tuple)):
        graphs = []
        for i, g in enumerate(spec):
            if not isinstance(g, pyg.data.Data) or g.x is None:
                raise AnytaskError(f"graph {i} is not a PyG Data with node features x")
            y = g.y.numpy() if getattr(g, "y", None) is not None and len(spec) == 1 else None
            clean, _ = from_arrays(g.x.numpy(), g.edge_index.numpy() if g.edge_index is not None else np.zeros((2, 0)),
                                   y, name=f"graph {i}")
            for key in ("train_mask", "val_mask", "test_mask", "label_mask"):
                if key in g:
                    clean[key] = g[key]
            if len(spec) > 1 and getattr(g, "y", None) is not None:
                clean.y = g.y.reshape(-1)[:1].long()
            graphs.append(clean)
        if len(graphs) > 1 and len({g.num_features for g in graphs}) > 1:
            raise AnytaskError("the graphs have different feature widths; give every graph the same node features")
        return GraphSet("graphs", graphs, "node" if len(graphs) == 1 else "graph")
    path = Path(str(spec)).expanduser()
    if not path.exists():
        roots = [Path(data_root) / "graph", Path(data_root)] if data_root is not None else []
        shared = shared_graph_root()
        roots += [shared] if shared is not None else []
        key = str(spec).lower()
        for root in roots:
            if key in PLANETOID and (root / f"{key}.npz").is_file():
                return load_planetoid(root / f"{key}.npz", key)
            if key in TU and (root / key).is_dir():
                return load_tu(root / key, key)
        known = ", ".join((*PLANETOID, *TU))
        raise AnytaskError(f"no graph {spec!r}: not a file or folder, and not one of the shared graphs ({known}) "
                           "under --data-root or ../shared/data/graph")
    if path.is_dir():
        return load_tu(path)
    if path.suffix == ".npz":
        return load_planetoid(path)
    raise AnytaskError(f"{path}: give a graph as a .npz (features, edge_index[, labels, train_idx, ...]) or a TU "
                       "folder")


def link_split(graph, *, val: float = 0.05, test: float = 0.1, seed: int = 0):
    """``(train, val, test)`` for link prediction, by PyG's ``RandomLinkSplit`` (undirected, one negative per
    positive for val and test): the training graph holds only the training edges, so the held-out edges never
    pass a message."""
    import torch

    pyg = _pyg()
    if graph.edge_index.shape[1] < 20:
        raise AnytaskError(f"link prediction needs edges to hold out; this graph has {graph.edge_index.shape[1] // 2}")
    torch.manual_seed(seed)
    split = pyg.transforms.RandomLinkSplit(num_val=val, num_test=test, is_undirected=True,
                                           add_negative_train_samples=False, split_labels=True)
    return split(graph.clone())
