"""Linear probe: multinomial logistic regression on frozen features.

The standard baseline for frozen representations (Alain & Bengio 2016,
https://arxiv.org/abs/1610.01644; the CLIP linear-probe protocol, Radford et al. 2021).
Fitting is delegated to scikit-learn's ``LogisticRegression(C=C)`` (L-BFGS in float64, the L2
penalty on the weights and not the bias; binary problems use one weight vector), so the two
agree by construction and a test checks it; the fitted weights are kept as tensors and saved
through ``anytask.core.io`` like every head.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from torch import Tensor

from anytask.methods.heads.base import HEADS, BaseHead


@HEADS.register("linear_probe", reference="Alain & Bengio 2016, https://arxiv.org/abs/1610.01644",
                summary="multinomial logistic regression (L2, C=1), agrees with scikit-learn's",
                output="classes", saveable=True)
class LinearProbe(BaseHead):
    """Multinomial logistic regression with an L2 penalty on the weights (not the bias)."""

    _parameter_constraints = {"C": [Interval(Real, 0, None, closed="neither")],
                              "max_iter": [Interval(Integral, 1, None, closed="left")],
                              "tol": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, *, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, X: Tensor, y: Tensor) -> None:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=float(self.C), max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported through n_iter_ == max_iter
            model.fit(X.double().numpy(), y.numpy())
        self.n_iter_ = np.asarray(model.n_iter_)
        self.coef_ = torch.from_numpy(model.coef_).float()  # (1, D) for two classes, else (C, D)
        self.intercept_ = torch.from_numpy(model.intercept_).float()

    def _logits(self, X: Tensor) -> Tensor:
        z = X.double() @ self.coef_.double().T + self.intercept_.double()  # (N, n_out)
        return torch.cat([torch.zeros_like(z), z], dim=1) if z.shape[1] == 1 else z

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_, self.intercept_ = tensors["coef"], tensors["intercept"]
