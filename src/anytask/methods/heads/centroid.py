"""Nearest class mean by cosine similarity (prototypical classification).

Snell et al. 2017, Prototypical Networks, https://arxiv.org/abs/1703.05175 — here with
cosine similarity on frozen embeddings and no meta-training.
"""

from __future__ import annotations

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval
from torch import Tensor
from torch.nn.functional import normalize

from anytask.methods.heads.base import HEADS, BaseHead


def class_means(X: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """Sum of L2-normalised rows per class ``(C, D)`` (unnormalised) and counts."""
    sums = torch.zeros(n_classes, X.shape[1], dtype=X.dtype).index_add_(0, y, normalize(X, dim=-1))
    return sums


@HEADS.register("centroid", reference="Snell et al. 2017, https://arxiv.org/abs/1703.05175",
                summary="cosine nearest class mean (prototypes), softmax over scaled similarities",
                output="classes", saveable=True)
class Centroid(BaseHead):
    """Class prototypes are mean unit-norm embeddings; scores are ``scale * cosine``."""

    _parameter_constraints = {"scale": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, *, scale: float = 20.0) -> None:
        self.scale = scale

    def _fit(self, X: Tensor, y: Tensor) -> None:
        self.prototypes_ = normalize(class_means(X, y, len(self.classes_)), dim=-1).numpy()  # (C, D)

    def _logits(self, X: Tensor) -> Tensor:
        return self.scale * normalize(X.double(), dim=-1) @ torch.from_numpy(self.prototypes_).double().T  # (N, C)

    def _tensors(self) -> dict[str, Tensor]:
        return {"prototypes": torch.from_numpy(self.prototypes_)}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.prototypes_ = tensors["prototypes"].float().numpy()
