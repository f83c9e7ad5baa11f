"""``exact``: brute-force cosine search, the reference every approximate index is measured against."""

from __future__ import annotations

import numpy as np
import torch

from anytask.core.errors import AnytaskError
from anytask.methods.retrieval.base import INDEXES, BaseIndex

CHUNK = 1024  # queries scored per matrix product, to bound memory at (CHUNK, n) floats


@INDEXES.register("exact", reference="brute-force inner product of unit vectors (the reference)",
                  summary="exact cosine top-k by one matrix product per chunk of queries; add and remove in place",
                  output="neighbours", saveable=True)
class ExactIndex(BaseIndex):
    def _build(self, X: np.ndarray) -> None:
        self.vectors_ = torch.from_numpy(np.ascontiguousarray(X))

    def _add(self, X: np.ndarray, ids: list) -> None:
        self.vectors_ = torch.cat([self.vectors_, torch.from_numpy(np.ascontiguousarray(X))])
        for i in ids:
            self.positions_[i] = len(self.ids_)
            self.ids_.append(i)

    def _remove(self, ids: set) -> None:
        keep = [p for p, d in enumerate(self.ids_) if d not in ids]
        self.vectors_ = self.vectors_[torch.tensor(keep, dtype=torch.long)].contiguous()
        self.ids_ = [self.ids_[p] for p in keep]
        self.positions_ = {d: i for i, d in enumerate(self.ids_)}

    def _search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, pos = [], []
        with torch.no_grad():
            for i in range(0, len(Q), CHUNK):
                s, p = torch.topk(torch.from_numpy(Q[i:i + CHUNK]) @ self.vectors_.T, k, dim=1)
                scores.append(s.numpy())
                pos.append(p.numpy())
        return np.concatenate(scores), np.concatenate(pos)

    # -- persistence (anytask.core.io) ---------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        return {"ids": self.ids_, "dim": self.dim_}, {"vectors": self.vectors_}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "ExactIndex":
        index = cls(**params)
        vectors, ids = tensors["vectors"], list(extra["ids"])
        if vectors.ndim != 2 or len(ids) != vectors.shape[0] or vectors.shape[1] != int(extra["dim"]):
            raise AnytaskError(f"corrupted saved index: {vectors.shape[0]} vectors of {vectors.shape[1]} dimensions "
                               f"but {len(ids)} ids and dim {extra['dim']}; build it again")
        index.vectors_, index.ids_, index.dim_ = vectors.float().contiguous(), ids, int(extra["dim"])
        index.positions_ = {d: i for i, d in enumerate(ids)}
        return index
