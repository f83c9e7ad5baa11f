"""BaseScorer: the scikit-learn regressor contract every score head follows.

A score head maps frozen features to a number: a rating, a quality score, an ordinal level.
``fit(X, y)`` takes numeric targets — or ordered labels with ``order=[...]`` ("negative",
"neutral", "positive" become 0, 1, 2) — and trains on them rescaled to [0, 1] (UniQA's MOS
normalisation); ``predict`` maps back to the targets' range. ``score`` is scikit-learn's R²;
``spearman`` / ``pearson`` are the rank and linear correlations quality papers report (SRCC, PLCC).
Saving goes through :mod:`anytask.core.io` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry
from anytask.core.validation import check_features

SCORERS: Registry = Registry("score head", family="scores")


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation (SRCC); 0.0 when either side is constant."""
    from scipy.stats import spearmanr

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return 0.0
    return float(spearmanr(y_true, y_pred).statistic)


def pearson(y_true, y_pred) -> float:
    """Pearson linear correlation (PLCC); 0.0 when either side is constant."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return 0.0
    return float(np.corrcoef(y_true, y_pred)[0, 1])


def check_targets(y, n: int, order: list | None = None) -> np.ndarray:
    """Numeric targets ``(n,)`` as float64: numbers, or labels placed by their position in ``order``."""
    if y is None:
        raise AnytaskError("a score head needs y: one number per row of X (a rating, a score, a level)")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise AnytaskError(f"y must be 1-D (one target per sample), got shape {y.shape}")
    if len(y) != n:
        raise AnytaskError(f"X has {n} rows but y has {len(y)} targets; they must match")
    if order is not None:
        rank = {str(v): i for i, v in enumerate(order)}
        unknown = sorted({str(v) for v in y.tolist()} - set(rank))
        if unknown:
            raise AnytaskError(f"y has values {unknown[:5]} that are not in order={list(order)}; add them to the "
                               "order (lowest first) or drop those rows")
        return np.asarray([rank[str(v)] for v in y.tolist()], dtype=np.float64)
    if y.dtype.kind in "OUSb":
        try:
            if y.dtype.kind == "b" or any(isinstance(v, (str, bytes, bool)) for v in y.tolist()):
                raise ValueError
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise AnytaskError(f"a score head needs numeric targets, but y holds {y[:3].tolist()}...; give numbers, or "
                               "pass order=[lowest, ..., highest] to read labels as ordered levels, or use a "
                               "classification head (anytask list) for unordered classes") from None
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0, 0])
        raise AnytaskError(f"y contains NaN or inf (first at row {i}); drop those rows before fitting")
    return y


class BaseScorer(Pretrained, RegressorMixin, BaseEstimator):
    """Abstract score head over features. Subclasses implement ``_fit`` (on targets scaled to [0, 1]),
    ``_unit_scores`` and the tensor hooks; ``order`` is every score head's parameter."""

    def fit(self, X, y):
        X = check_features(X)
        y = check_targets(y, len(X), getattr(self, "order", None))
        lo, hi = float(y.min()), float(y.max())
        if hi == lo:
            raise AnytaskError(f"every target is {lo}; a score head needs at least two different values")
        self.target_range_ = (lo, hi)
        self.n_features_in_ = X.shape[1]
        self._fit(torch.from_numpy(X), torch.from_numpy((y - lo) / (hi - lo)).float())
        return self

    def _check_X(self, X) -> Tensor:
        check_is_fitted(self, "target_range_")
        return torch.from_numpy(check_features(X, n_features=self.n_features_in_, owner=type(self).__name__))

    def predict(self, X) -> np.ndarray:
        """Scores in the targets' units (the fitted range, or ``target_range`` for an unfitted zero-shot head)."""
        u = self._unit_scores(self._check_X(X)).double().numpy()
        lo, hi = self.target_range_
        return lo + u * (hi - lo)

    # -- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: Tensor, y: Tensor) -> None:
        """Fit on float32 features ``(N, D)`` and targets in [0, 1] ``(N,)``."""

    @abstractmethod
    def _unit_scores(self, X: Tensor) -> Tensor:
        """Scores on the [0, 1] scale of the training targets ``(N,)``."""

    @abstractmethod
    def _tensors(self) -> dict[str, Tensor]:
        """The fitted tensors to save."""

    @abstractmethod
    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore the fitted tensors saved by ``_tensors``."""

    # -- persistence (anytask.core.io) -------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "target_range_")
        return {"target_range": list(self.target_range_), "n_features_in": int(self.n_features_in_)}, self._tensors()

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "BaseScorer":
        if "cache_dir" in params:  # a saved folder must not choose where this process writes its cache
            params = {**params, "cache_dir": None}
        head = cls(**params)
        head.target_range_ = tuple(float(v) for v in extra["target_range"])
        head.n_features_in_ = int(extra["n_features_in"])
        try:
            head._load_tensors(tensors)
        except KeyError as e:
            raise AnytaskError(f"corrupted saved {cls.__name__}: tensor {e} is missing") from e
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise AnytaskError(f"corrupted saved {cls.__name__}: tensor(s) {bad[:3]} hold NaN or inf")
        try:
            probe = head._unit_scores(torch.zeros(1, head.n_features_in_))
        except Exception as e:
            raise AnytaskError(f"corrupted saved {cls.__name__}: its tensors do not fit {head.n_features_in_} "
                               f"features ({type(e).__name__})") from None
        if tuple(probe.shape) != (1,):
            raise AnytaskError(f"corrupted saved {cls.__name__}: it gives {tuple(probe.shape)} scores per row, not one")
        return head
