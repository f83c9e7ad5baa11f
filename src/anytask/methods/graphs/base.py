"""Graphs: unsupervised graph encoders, trained once and reused frozen for node, link and graph tasks
(``ENCODERS``), and task-agnostic valuation of one graph or data set for another (``VALUATIONS``).

An encoder is a scikit-learn estimator over graphs (a name of the shared data, a ``.npz``, a TU folder, PyG
``Data`` or a list of them; see ``anytask.data.graphs``)::

    enc = ENCODERS.get("isoc_vgae")(epochs=200).fit("cora")
    X = enc.embed("cora")                      # (N, D) node embeddings, for any feature head
    G = enc.embed("mutag", level="graph")      # (n_graphs, D) sum-pooled, for graph classification
    enc.save_pretrained("cora-isoc")           # config.json + model.safetensors

Every encoder shares the GNN stack below (``GraphNet``: L message-passing layers, then a mean / log-std head)
and the training loop; a method supplies only its decoder and loss (``_decoder`` / ``_loss``). Node embeddings
concatenate every layer's output and the mean ``mu`` (``node_repr="all"``; ``"z"`` gives ``mu`` alone); a
graph's embedding is the sum over its nodes (sum keeps GIN's injectivity, so isomorphic graphs get equal
embeddings and 1-WL-distinguishable ones can differ).
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry
from anytask.data.graphs import GraphSet, load_graphs

ENCODERS: Registry = Registry("graph encoder", family="graphs")
VALUATIONS: Registry = Registry("valuation", family="graphs")
CONVS = ("gin", "gcn")
log = logging.getLogger("anytask.graphs")


class GraphNet(nn.Module):
    """L message-passing layers (GIN with sum aggregation and a 2-layer MLP, or GCN), ReLU between them, then
    ``mu`` and ``log sigma``: linear heads (``head="linear"``) or one more convolution each (``head="conv"``,
    Kipf & Welling's VGAE)."""

    def __init__(self, in_dim: int, hidden: int, latent: int, layers: int, conv: str, head: str, variational: bool):
        super().__init__()
        from torch_geometric.nn import GCNConv, GINConv

        def make(i, o):
            if conv == "gcn":
                return GCNConv(i, o)
            return GINConv(nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)), train_eps=True)

        dims = [in_dim] + [hidden] * layers
        self.conv, self.head = conv, head
        self.convs = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:]))
        last = dims[-1]
        if head == "conv":
            self.mu, self.logstd = make(last, latent), (make(last, latent) if variational else None)
        else:
            self.mu, self.logstd = nn.Linear(last, latent), (nn.Linear(last, latent) if variational else None)
        self.dims = dims

    def _apply(self, layer, h, edge_index):
        return layer(h, edge_index) if self.head == "conv" else layer(h)

    def forward(self, x, edge_index):
        """``(hs, mu, logstd)``: ``hs = [x, h1, ..., hL]`` (every layer's output), the latent mean and log-std."""
        hs = [x]
        for conv in self.convs:
            hs.append(torch.relu(conv(hs[-1], edge_index)))
        mu = self._apply(self.mu, hs[-1], edge_index)
        logstd = self._apply(self.logstd, hs[-1], edge_index).clamp(max=10) if self.logstd is not None else None
        return hs, mu, logstd


def _row_normalize(x: torch.Tensor) -> torch.Tensor:
    s = x.abs().sum(1, keepdim=True)
    return x / torch.where(s > 0, s, torch.ones_like(s))


def kl_term(mu, logstd) -> torch.Tensor:
    """KL(q(z|X,A) || N(0, I)), summed over latent dimensions and averaged over nodes, scaled by 1 / N as in
    PyG's VGAE example (Kipf & Welling's weighting)."""
    kl = -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu ** 2 - logstd.exp() ** 2, dim=1))
    return kl / mu.shape[0]


DENSE_MAX_NODES = 12_000  # edge_loss="auto": the full adjacency up to this many nodes per batch, sampled above


def edge_term(z, edge_index, num_nodes, mode: str = "auto") -> torch.Tensor:
    """Inner-product edge reconstruction. ``dense``: Kipf & Welling's loss, BCE over the whole adjacency (self-loops
    counted as edges) with positives up-weighted by (N^2 - E) / E and the N^2 / (2 (N^2 - E)) norm; O(N^2) memory.
    ``sampled``: PyG's, BCE on the edges and as many sampled non-edges. ``auto``: dense up to ``DENSE_MAX_NODES``."""
    from torch_geometric.utils import negative_sampling

    if mode == "dense" or (mode == "auto" and num_nodes <= DENSE_MAX_NODES):
        A = torch.zeros(num_nodes, num_nodes)
        A[edge_index[0], edge_index[1]] = 1
        A.fill_diagonal_(1)
        n2, e = float(num_nodes) ** 2, float(A.sum())
        bce = nn.functional.binary_cross_entropy_with_logits(z @ z.T, A, pos_weight=torch.tensor((n2 - e) / e))
        return n2 / (2 * (n2 - e)) * bce
    if edge_index.shape[1] == 0:
        return z.sum() * 0
    neg = negative_sampling(edge_index, num_nodes=num_nodes, num_neg_samples=edge_index.shape[1])
    pos_logit = (z[edge_index[0]] * z[edge_index[1]]).sum(-1)
    neg_logit = (z[neg[0]] * z[neg[1]]).sum(-1)
    bce = nn.functional.binary_cross_entropy_with_logits
    return bce(pos_logit, torch.ones_like(pos_logit)) + bce(neg_logit, torch.zeros_like(neg_logit))


class GraphEncoder(BaseEstimator, Pretrained):
    """The shared estimator: parameters, training loop, embedding, link scores, save / load. Subclasses set
    the decoder (``_decoder(net) -> nn.Module | None``) and the loss (``_loss(batch) -> (loss, parts)``)."""

    variational = True

    def _check_params(self) -> None:
        if self.conv not in CONVS:
            raise AnytaskError(f"conv={self.conv!r}: use one of {', '.join(CONVS)}")
        if self.head not in ("linear", "conv"):
            raise AnytaskError(f"head={self.head!r}: use 'linear' or 'conv'")
        if self.node_repr not in ("all", "z"):
            raise AnytaskError(f"node_repr={self.node_repr!r}: use 'all' (every layer and mu) or 'z' (mu)")
        for name in ("hidden", "latent", "layers", "epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        if self.edge_loss not in ("auto", "dense", "sampled"):
            raise AnytaskError(f"edge_loss={self.edge_loss!r}: use 'auto', 'dense' or 'sampled'")
        if not self.lr > 0:
            raise AnytaskError(f"lr={self.lr!r}: must be positive")

    # -- what a method provides --------------------------------------------------------------------------
    def _decoder(self, net: GraphNet) -> nn.Module | None:
        return None

    def _loss(self, x, edge_index):
        raise NotImplementedError

    # -- inputs --------------------------------------------------------------------------------------------
    def _prepare(self, graphs) -> GraphSet:
        gs = load_graphs(graphs)
        if hasattr(self, "in_dim_") and gs.num_features != self.in_dim_:
            raise AnytaskError(f"this encoder was trained on {self.in_dim_} node features; the graph has "
                               f"{gs.num_features}. Embed graphs with the same node features it was trained on")
        return gs

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        return _row_normalize(x) if self.normalize_features else x

    def _batches(self, gs: GraphSet, shuffle: bool, generator=None):
        if len(gs.graphs) == 1:
            yield gs.graphs[0]
            return
        from torch_geometric.loader import DataLoader

        yield from DataLoader(gs.graphs, batch_size=int(self.batch_size), shuffle=shuffle, generator=generator)

    # -- fit / embed ---------------------------------------------------------------------------------------
    def fit(self, graphs, y=None):
        """Train without labels on one graph or a collection (``y`` is ignored: the encoder is task-agnostic)."""
        self._check_params()
        self.__dict__.pop("in_dim_", None)  # a refit may change the feature width
        gs = self._prepare(graphs)
        torch.manual_seed(int(self.seed))
        random.seed(int(self.seed))  # PyG's negative sampling draws from Python's generator
        gen = torch.Generator().manual_seed(int(self.seed))
        self.in_dim_ = gs.num_features
        self.net_ = GraphNet(self.in_dim_, int(self.hidden), int(self.latent), int(self.layers), self.conv,
                             self.head, self.variational)
        self.decoder_ = self._decoder(self.net_)
        params = list(self.net_.parameters()) + (list(self.decoder_.parameters()) if self.decoder_ else [])
        opt = torch.optim.Adam(params, lr=float(self.lr))
        self.history_ = []
        bar = tqdm(range(int(self.epochs)), desc=f"train {type(self).__name__}", disable=not self.progress,
                   leave=False)
        self.net_.train()
        for _ in bar:
            total, parts_sum, n = 0.0, {}, 0
            for batch in self._batches(gs, shuffle=True, generator=gen):
                opt.zero_grad()
                loss, parts = self._loss(self._x(batch.x), batch.edge_index)
                if not torch.isfinite(loss):
                    raise AnytaskError(f"the {type(self).__name__} loss became {float(loss)}; lower lr={self.lr}")
                loss.backward()
                opt.step()
                total += float(loss.detach())
                n += 1
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
            self.history_.append({"loss": total / n, **{k: v / n for k, v in parts_sum.items()}})
            bar.set_postfix(loss=f"{total / n:.4f}")
        self.net_.eval()
        return self

    @torch.no_grad()
    def _forward(self, graph):
        hs, mu, _ = self.net_(self._x(graph.x), graph.edge_index)
        return hs, mu

    @torch.no_grad()
    def embed(self, graphs, level: str | None = None) -> np.ndarray:
        """Node embeddings ``(N, D)`` of one graph (``level="node"``, the default for one graph) or one
        sum-pooled row per graph (``level="graph"``, the default for many). Deterministic: the mean, no noise."""
        check_is_fitted(self, "net_")
        gs = self._prepare(graphs)
        level = level or gs.level
        if level not in ("node", "graph"):
            raise AnytaskError(f"level={level!r}: use 'node' or 'graph'")
        if level == "node" and len(gs.graphs) != 1:
            raise AnytaskError(f"node embeddings are for one graph; this set has {len(gs.graphs)} "
                               "(use level='graph', or embed the graphs one at a time)")
        self.net_.eval()
        out = []
        for batch in self._batches(gs, shuffle=False):
            hs, mu = self._forward(batch)
            every = torch.cat(hs[1:] + [mu], 1)
            if level == "node":
                out.append(every if self.node_repr == "all" else mu)
            else:
                from torch_geometric.nn import global_add_pool

                index = batch.batch if getattr(batch, "batch", None) is not None else \
                    torch.zeros(len(every), dtype=torch.long)
                out.append(global_add_pool(every, index))
        return torch.cat(out).numpy()

    def transform(self, graphs) -> np.ndarray:
        return self.embed(graphs)

    def fit_transform(self, graphs, y=None) -> np.ndarray:
        return self.fit(graphs).embed(graphs)

    @torch.no_grad()
    def link_scores(self, graph, pairs) -> np.ndarray:
        """sigmoid(mu_u . mu_v) for each (u, v) in ``pairs`` (2, P): the inner-product decoder's edge probability,
        from embeddings of ``graph`` (which should hold only the edges the model may see)."""
        check_is_fitted(self, "net_")
        g = self._prepare(graph).graphs[0]
        pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.long)
        if pairs.dim() != 2 or pairs.shape[0] != 2:
            raise AnytaskError(f"pairs must have shape (2, P), got {tuple(pairs.shape)}")
        if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= g.num_nodes):
            raise AnytaskError(f"pairs refer to nodes outside 0..{g.num_nodes - 1}")
        _, mu = self._forward(g)
        return torch.sigmoid((mu[pairs[0]] * mu[pairs[1]]).sum(-1)).numpy()

    # -- save / load ---------------------------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "net_")
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        if self.decoder_ is not None:
            tensors.update({f"decoder.{k}": v for k, v in self.decoder_.state_dict().items()})
        final = self.history_[-1] if self.history_ else {}
        return {"in_dim": int(self.in_dim_), "final_loss": final}, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        enc = cls(**params)
        enc.in_dim_ = int(extra["in_dim"])
        enc.net_ = GraphNet(enc.in_dim_, int(enc.hidden), int(enc.latent), int(enc.layers), enc.conv, enc.head,
                            enc.variational)
        enc.decoder_ = enc._decoder(enc.net_)
        missing = enc.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")},
                                           strict=False)
        if missing.missing_keys:
            raise AnytaskError(f"the saved encoder lacks tensors {missing.missing_keys[:3]}; re-save it")
        if enc.decoder_ is not None:
            enc.decoder_.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
        enc.net_.eval()
        enc.history_ = [extra.get("final_loss", {})]
        return enc

    def _card_fields(self) -> dict:
        return {"input": "graphs (PyG Data, a .npz, a TU folder or a shared graph name)",
                "output": "node embeddings (embed) or sum-pooled graph embeddings (level='graph')"}
