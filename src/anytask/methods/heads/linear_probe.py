"""Linear probe: multinomial logistic regression on frozen features.

The standard baseline for frozen representations (Alain & Bengio 2016,
https://arxiv.org/abs/1610.01644; the CLIP linear-probe protocol, Radford et al. 2021).
Fitting is delegated to scikit-learn's ``LogisticRegression(C=C)`` (L-BFGS in float64, the L2
penalty on the weights and not the bias; binary problems use one weight vector), so the two
agree by construction and a test checks it; the fitted weights are kept as tensors and saved
through ``anytask.core.io`` like every head.

With C = 1 on unit-norm embeddings the logits are small and every probability sits near 1/C
(0.52 for a clear-cut positive review), so by default the probabilities are temperature-scaled
(Guo et al. 2017, https://arxiv.org/abs/1706.04599) with T chosen by cross-validation on the
support set; predictions are unchanged. ``calibration=None`` gives scikit-learn's probabilities.

``label_prior=w`` adds the label-name prior: each class's name, embedded by ``backbone`` (as the
``zero_shot`` head does; ``descriptions`` map terse labels to words), joins the training set as one
more example of its class with sample weight ``w`` (it counts as ``w`` examples; every fit and
every cross-validation fold keeps it). With few examples per class the names carry much of the
signal; as examples accumulate they outweigh it. Off by default (``0``: the standard probe).
Classes without names (numbers, no descriptions) are fitted without it, with a warning.

``class_weight`` is scikit-learn's (``"balanced"`` or ``{label: weight}``): with imbalanced classes (spam
among ham) it weights each class's examples inversely to its frequency, in the fit and in every
calibration fold. The fitted ``coef_`` and ``intercept_`` are numpy arrays, as scikit-learn's are.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead


@HEADS.register("linear_probe", reference="Alain & Bengio 2016, https://arxiv.org/abs/1610.01644",
                summary="multinomial logistic regression (L2, C=1, scikit-learn's), probabilities temperature-scaled "
                        "on the support set; label_prior=w adds the embedded label names as weighted examples",
                output="classes", saveable=True, label_names=True)
class LinearProbe(BaseHead):
    """Multinomial logistic regression with an L2 penalty on the weights (not the bias)."""

    _parameter_constraints = {"C": [Interval(Real, 0, None, closed="neither")],
                              "max_iter": [Interval(Integral, 1, None, closed="left")],
                              "tol": [Interval(Real, 0, None, closed="neither")],
                              "calibration": [StrOptions({"temperature"}), None],
                              "label_prior": [Interval(Real, 0, None, closed="left")], "descriptions": [dict, None],
                              "class_weight": [StrOptions({"balanced"}), dict, None],
                              "backbone": [str], "cache_dir": [str, None]}

    def __init__(self, *, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6,
                 calibration: str | None = "temperature", label_prior: float = 0.0, descriptions: dict | None = None,
                 class_weight: str | dict | None = None, backbone: str = "minilm",
                 cache_dir: str | None = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.calibration = calibration
        self.label_prior = label_prior
        self.descriptions = descriptions
        self.class_weight = class_weight
        self.backbone = backbone
        self.cache_dir = cache_dir

    def _model(self, X: np.ndarray, y: np.ndarray, start=None, names: np.ndarray | None = None):
        """scikit-learn's fit. ``start`` (a fitted model) warm-starts L-BFGS from its weights, with a looser
        tolerance: held-out logits that only choose a temperature need not be exact."""
        from sklearn.linear_model import LogisticRegression

        tol, max_iter = (self.tol, self.max_iter) if start is None else (max(self.tol, 1e-4), min(self.max_iter, 100))
        model = LogisticRegression(C=float(self.C), max_iter=max_iter, tol=tol, warm_start=start is not None,
                                   class_weight=self._class_weight_idx())
        if start is not None:
            model.coef_, model.intercept_ = start.coef_.copy(), start.intercept_.copy()
        weight = None
        if names is not None:  # the label-name prior: one weighted pseudo-example per class
            C = len(names)
            X, y = np.vstack([X, names]), np.concatenate([y, np.arange(C)])
            weight = np.concatenate([np.ones(len(y) - C), np.full(C, float(self.label_prior))])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported through n_iter_ == max_iter
            return model.fit(X, y, sample_weight=weight)

    def _class_weight_idx(self) -> str | dict | None:
        """``class_weight`` keyed by class index (the fit sees indices into ``classes_``, not the labels)."""
        if not isinstance(self.class_weight, dict):
            return self.class_weight
        lookup = {str(label): i for i, label in enumerate(self.classes_.tolist())}
        unknown = [k for k in self.class_weight if str(k) not in lookup]
        if unknown:
            raise AnytaskError(f"class_weight names label(s) {unknown[:5]} that are not in y; the classes are "
                               f"{self.classes_.tolist()[:20]}")
        return {lookup[str(k)]: float(w) for k, w in self.class_weight.items()}

    def _fit(self, X: Tensor, y: Tensor) -> None:
        from anytask.methods.heads.zero_shot import name_examples

        names = name_examples(self.classes_, self.label_prior, descriptions=self.descriptions, backbone=self.backbone,
                              cache_dir=self.cache_dir, owner="linear_probe")
        if names is not None and names.shape[1] != X.shape[1]:
            raise AnytaskError(f"backbone {self.backbone!r} gives {names.shape[1]}-d label embeddings but X has "
                               f"{X.shape[1]} features; pass the backbone that embedded X")
        names = None if names is None else names.astype(np.float64)
        self.label_prior_used_ = names is not None
        X64, y_np = X.double().numpy(), y.numpy()
        model = self._model(X64, y_np, names=names)
        self.n_iter_ = np.asarray(model.n_iter_)
        self.coef_ = model.coef_.astype(np.float32)  # (1, D) for two classes, else (C, D)
        self.intercept_ = model.intercept_.astype(np.float32)
        self.temperature_ = (self._fit_temperature(X64, y_np, model, names) if self.calibration == "temperature"
                             else 1.0)

    def _fit_temperature(self, X: np.ndarray, y: np.ndarray, full, names: np.ndarray | None = None) -> float:
        """Temperature scaling (Guo et al. 2017) fitted on the support set itself: the out-of-fold logits of a
        stratified k-fold (k = min(5, smallest class)) choose the T that minimises their log loss. Classes with
        one example leave nothing to hold out: then T = 1 (no calibration). The fold fits start from the full
        fit's weights (the same convex objective minus a few rows) with a looser tolerance."""
        from scipy.optimize import minimize_scalar
        from sklearn.model_selection import StratifiedKFold

        n_classes = len(self.classes_)
        folds = min(5, int(np.bincount(y, minlength=n_classes).min()))
        if folds < 2:
            return 1.0
        logits = np.zeros((len(y), n_classes))
        for train, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y):
            z = self._model(X[train], y[train], start=full, names=names).decision_function(X[held])
            logits[held] = np.stack([np.zeros_like(z), z], 1) if z.ndim == 1 else z

        def nll(log_t: float) -> float:
            s = logits / np.exp(log_t)
            s = s - s.max(1, keepdims=True)
            return float(np.mean(np.log(np.exp(s).sum(1)) - s[np.arange(len(y)), y]))

        return float(np.exp(minimize_scalar(nll, bounds=(np.log(1e-2), np.log(1e2)), method="bounded").x))

    def _logits(self, X: Tensor) -> Tensor:
        coef, intercept = torch.from_numpy(self.coef_).double(), torch.from_numpy(self.intercept_).double()
        z = X.double() @ coef.T + intercept  # (N, n_out)
        z = z / self.temperature_  # T = 1 without calibration; the argmax never changes
        return torch.cat([torch.zeros_like(z), z], dim=1) if z.shape[1] == 1 else z

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": torch.from_numpy(self.coef_), "intercept": torch.from_numpy(self.intercept_),
                "temperature": torch.tensor(self.temperature_, dtype=torch.float64)}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_, self.intercept_ = tensors["coef"].float().numpy(), tensors["intercept"].float().numpy()
        if "temperature" in tensors:
            self.temperature_ = float(tensors["temperature"])
        else:  # saved before calibration existed: its probabilities were never calibrated
            self.temperature_, self.calibration = 1.0, None
