"""``hnsw``: approximate cosine search on a navigable small-world graph, by usearch.

Malkov & Yashunin 2018, Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs, https://arxiv.org/abs/1603.09320; the graph is usearch's
(https://github.com/unum-cloud/usearch), chosen over FAISS's ``IndexHNSWFlat`` because it removes
vectors in place (FAISS's HNSW cannot). Optional: ``pip install 'anytask[retrieval]'``. Measured in
``benchmarks/retrieval/index.py``.

``connectivity`` (M, edges per node), ``expansion_add`` (efConstruction) and ``expansion_search``
(efSearch) trade build time and latency for recall (usearch's defaults, except efSearch 128 rather than
64: for queries far from the data — 3,000 clustered 32-d vectors, queries around other centres — 64 gave
recall@10 0.92 and 128 gave 0.98; near the data both gave 1.0); recall and latency at scale are for the
benchmark. A query the graph answers with fewer than ``k`` neighbours (possible after many removals)
is searched again exhaustively, so ``search`` always returns ``k``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from anytask.core.errors import AnytaskError
from anytask.methods.retrieval.base import INDEXES, BaseIndex

INSTALL = "pip install 'anytask[retrieval]' (or pip install usearch)"


def _usearch():
    if importlib.util.find_spec("usearch") is None:
        raise AnytaskError(f"the hnsw index needs the package usearch: {INSTALL}")
    import usearch.index

    return usearch.index


@INDEXES.register("hnsw", reference="HNSW, Malkov & Yashunin 2018, https://arxiv.org/abs/1603.09320 (usearch)",
                  summary="approximate cosine top-k on a small-world graph (usearch); add and remove in place",
                  output="neighbours", saveable=True)
class HNSWIndex(BaseIndex):
    def __init__(self, *, connectivity: int = 16, expansion_add: int = 128, expansion_search: int = 128,
                 threads: int = 1) -> None:
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search
        self.threads = threads

    def _new(self, dim: int):
        for name in ("connectivity", "expansion_add", "expansion_search", "threads"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise AnytaskError(f"{name}={value!r}: give a positive integer")
        return _usearch().Index(ndim=dim, metric="cos", dtype="f32", connectivity=int(self.connectivity),
                                expansion_add=int(self.expansion_add), expansion_search=int(self.expansion_search))

    def _build(self, X: np.ndarray) -> None:
        self.graph_ = self._new(X.shape[1])
        # the graph's key of each position in ids_, ascending (new keys are larger, removal keeps the order),
        # so a key's position is a binary search
        self.keys_ = np.arange(len(X), dtype=np.uint64)
        self.graph_.add(self.keys_, X, threads=int(self.threads))

    def _add(self, X: np.ndarray, ids: list) -> None:
        start = int(self.keys_.max()) + 1 if len(self.keys_) else 0
        keys = np.arange(start, start + len(X), dtype=np.uint64)
        self.graph_.add(keys, X, threads=int(self.threads))
        self.keys_ = np.concatenate([self.keys_, keys])
        for i in ids:
            self.positions_[i] = len(self.ids_)
            self.ids_.append(i)

    def _remove(self, ids: set) -> None:
        drop = np.array([self.positions_[i] for i in ids])
        self.graph_.remove(self.keys_[drop])
        keep = np.setdiff1d(np.arange(len(self.ids_)), drop)
        self.keys_ = self.keys_[keep]
        self.ids_ = [self.ids_[p] for p in keep]
        self.positions_ = {d: i for i, d in enumerate(self.ids_)}

    def _search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        found = self.graph_.search(Q, k, threads=int(self.threads))
        keys = np.asarray(found.keys).reshape(len(Q), -1)
        dist = np.asarray(found.distances, dtype=np.float32).reshape(len(Q), -1)
        # one query gives usearch's Matches (no counts), several its BatchMatches
        counts = np.asarray(getattr(found, "counts", [len(found.keys)])).reshape(len(Q))
        scores = np.empty((len(Q), k), dtype=np.float32)
        pos = np.empty((len(Q), k), dtype=np.int64)
        short = []
        for r in range(len(Q)):
            if counts[r] < k:
                short.append(r)
                continue
            pos[r] = np.searchsorted(self.keys_, keys[r, :k].astype(np.uint64))  # keys_ ascends
            scores[r] = 1.0 - dist[r, :k]
        if short:  # exhaustive over the stored vectors: always k answers
            vectors = np.asarray(self.graph_.get(self.keys_), dtype=np.float32)
            sims = torch.from_numpy(Q[short]) @ torch.from_numpy(vectors).T
            s, p = torch.topk(sims, k, dim=1)
            scores[short], pos[short] = s.numpy(), p.numpy()
        return scores, pos

    # -- persistence (anytask.core.io) ---------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        blob = np.frombuffer(bytes(self.graph_.save()), dtype=np.uint8).copy()
        return ({"ids": self.ids_, "dim": self.dim_},
                {"graph": torch.from_numpy(blob), "keys": torch.from_numpy(self.keys_.astype(np.int64))})

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "HNSWIndex":
        index = cls(**params)
        index.graph_ = _usearch().Index.restore(bytearray(tensors["graph"].numpy().tobytes()))
        if index.graph_ is None:
            raise AnytaskError("corrupted saved index: its graph cannot be read; build it again")
        index.keys_ = tensors["keys"].numpy().astype(np.uint64)
        index.ids_, index.dim_ = list(extra["ids"]), int(extra["dim"])
        if len(index.ids_) != len(index.keys_) or len(index.graph_) != len(index.keys_):
            raise AnytaskError(f"corrupted saved index: {len(index.ids_)} ids, {len(index.keys_)} keys and "
                               f"{len(index.graph_)} vectors; build it again")
        index.positions_ = {d: i for i, d in enumerate(index.ids_)}
        return index
