"""k-nearest neighbours by cosine similarity (Cover & Hart 1967, doi:10.1109/TIT.1967.1053964).

Probabilities are the vote shares of the k nearest training examples, each vote weighted
by ``1 + cosine`` (``weights="similarity"``, the default, so that ties between classes go
to the nearer examples: with one example per class it is the nearest neighbour) or
equal (``weights="uniform"``). With fewer than k examples all of them vote.
"""

from __future__ import annotations

from numbers import Integral

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor
from torch.nn.functional import normalize

from anytask.methods.heads.base import HEADS, BaseHead


@HEADS.register("knn", reference="Cover & Hart 1967, doi:10.1109/TIT.1967.1053964",
                summary="k nearest neighbours (cosine), vote shares as probabilities", output="classes",
                saveable=True)
class KNN(BaseHead):
    _parameter_constraints = {"n_neighbors": [Interval(Integral, 1, None, closed="left")],
                              "weights": [StrOptions({"uniform", "similarity"})]}

    def __init__(self, *, n_neighbors: int = 5, weights: str = "similarity") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights

    def _fit(self, X: Tensor, y: Tensor) -> None:
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        self.train_X_ = normalize(X, dim=-1)
        self.train_y_ = y

    def _votes(self, X: Tensor) -> Tensor:
        sims = normalize(X, dim=-1) @ self.train_X_.T  # (N, M)
        k = min(self.n_neighbors, sims.shape[1])
        top, idx = sims.topk(k, dim=1)  # (N, k)
        w = torch.ones_like(top) if self.weights == "uniform" else (top + 1).clamp_min(1e-6)
        votes = torch.zeros(X.shape[0], len(self.classes_), dtype=X.dtype)
        votes.scatter_add_(1, self.train_y_[idx], w)
        return votes / votes.sum(1, keepdim=True)  # (N, C)

    def _logits(self, X: Tensor) -> Tensor:
        return torch.log(self._votes(X).clamp_min(1e-6))

    def _tensors(self) -> dict[str, Tensor]:
        return {"train_X": self.train_X_, "train_y": self.train_y_}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.train_X_, self.train_y_ = tensors["train_X"], tensors["train_y"]
