"""BaseHead: the scikit-learn estimator contract every head follows.

``fit(X, y)`` validates features and labels, encodes labels to ``classes_`` (sorted,
as scikit-learn does) and calls ``_fit``; ``predict_proba`` validates and calls
``_logits``. ``__init__`` only stores keyword parameters. Fitted state ends in ``_``.
Saving goes through :mod:`anytask.core.io` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry
from anytask.core.validation import check_features


def _discover_heads() -> None:
    """Heads of other families (icl, concepts, prompting) register from their own folders."""
    from anytask.methods import all_registries

    all_registries()


HEADS: Registry = Registry("head", family="heads", discover=_discover_heads)


class BaseHead(Pretrained, ClassifierMixin, BaseEstimator):
    """Abstract head over features. Subclasses implement ``_fit``, ``_logits`` and the state hooks, and
    declare their parameters' valid values in ``_parameter_constraints`` (scikit-learn's convention)."""

    min_classes = 2
    _parameter_constraints: dict = {}

    def _check_params(self) -> None:
        """Every parameter of the declared kind and range, or one AnytaskError naming the first bad one."""
        from sklearn.utils._param_validation import InvalidParameterError

        for name, value in self.get_params(deep=False).items():
            if isinstance(value, float) and not np.isfinite(value):
                raise AnytaskError(f"parameter {name}={value} of {type(self).__name__} is not a finite number; "
                                   "give a finite value or leave it out for the default")
        try:
            self._validate_params()
        except InvalidParameterError as e:
            raise AnytaskError(f"{e} (set it with --param / head_params, or leave it out for the default)") from None

    def fit(self, X, y):
        self._check_params()
        X = check_features(X)
        if y is None:
            raise AnytaskError(f"{type(self).__name__} requires y to be passed, but the target y is None; "
                               "pass one label per row of X")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it was raveled",
                          DataConversionWarning, stacklevel=2)
            y = np.ravel(y)
        if y.ndim != 1:
            raise AnytaskError(f"y must be 1-D (one label per sample), got shape {y.shape}")
        if len(y) != len(X):
            raise AnytaskError(f"X has {len(X)} rows but y has {len(y)} labels; they must match")
        try:
            check_classification_targets(y)
        except ValueError as e:
            if "continuous" not in str(e):
                raise
            raise AnytaskError(f"{e} For a number per text (a rating, a score) use a score head: ridge or anchored "
                               "(anytask.TextScorer, `anytask fit --head ridge`)") from None
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < self.min_classes:
            raise AnytaskError(f"y has only one class ({classes[0]!r}); a classifier needs examples of "
                               "at least 2 classes")
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self._fit(torch.from_numpy(X), torch.from_numpy(y_idx.astype(np.int64)))
        return self

    def _validate_for_predict(self, X) -> Tensor:
        check_is_fitted(self, "classes_")
        return torch.from_numpy(check_features(X, n_features=self.n_features_in_, owner=type(self).__name__))

    def predict_proba(self, X) -> np.ndarray:
        logits = self._logits(self._validate_for_predict(X))
        return torch.softmax(logits.double(), dim=-1).numpy()

    def decision_function(self, X) -> np.ndarray:
        logits = self._logits(self._validate_for_predict(X)).double().numpy()
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: Tensor, y: Tensor) -> None:
        """Fit on float32 features ``(N, D)`` and label indices ``(N,)`` into ``classes_``."""

    @abstractmethod
    def _logits(self, X: Tensor) -> Tensor:
        """Unnormalised class scores ``(N, C)``, columns in ``classes_`` order."""

    @abstractmethod
    def _tensors(self) -> dict[str, Tensor]:
        """The fitted tensors to save."""

    @abstractmethod
    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore the fitted tensors saved by ``_tensors``."""

    def _load_extra(self, extra: dict, tensors: dict[str, Tensor]) -> None:
        """Restore fitted state saved in the config's ``extra`` (heads made of other heads); default: none."""

    def _probe_logits(self) -> Tensor:
        """Scores of one zero row, run once on loading to catch tensors of the wrong shape."""
        return self._logits(torch.zeros(1, self.n_features_in_))

    # -- persistence (anytask.core.io) -------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "classes_")
        classes = self.classes_.tolist()
        return {"classes": classes, "n_features_in": int(self.n_features_in_)}, self._tensors()

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "BaseHead":
        if "cache_dir" in params:  # a saved folder must not choose where this process writes its cache
            params = {**params, "cache_dir": None}
        head = cls(**params)
        classes = extra["classes"]
        head.classes_ = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else None)
        head.n_features_in_ = int(extra["n_features_in"])
        try:
            head._load_extra(extra, tensors)
            head._load_tensors(tensors)
        except KeyError as e:
            raise AnytaskError(f"corrupted saved {cls.__name__}: tensor {e} is missing") from e
        bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise AnytaskError(f"corrupted saved {cls.__name__}: tensor(s) {bad[:3]} hold NaN or inf")
        try:  # one zero row through the head: wrong shapes fail here, with a clear message, not at predict
            probe = head._probe_logits()
        except Exception as e:
            raise AnytaskError(f"corrupted saved {cls.__name__}: its tensors do not fit {head.n_features_in_} features "
                               f"and {len(head.classes_)} classes ({type(e).__name__})") from None
        if tuple(probe.shape) != (1, len(head.classes_)):
            raise AnytaskError(f"corrupted saved {cls.__name__}: it scores {probe.shape[-1]} classes but its config "
                               f"lists {len(head.classes_)}")
        return head
