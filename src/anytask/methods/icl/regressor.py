"""In-context regression: the module emits a linear head from support pairs (BraInCoRL).

Yu et al. 2025, https://arxiv.org/abs/2505.15813 (card 41): a set transformer reads
(embedding, response) pairs and outputs the weights and bias of a linear model for new
inputs, with no gradient step. Here the same dimension-free module as the ``icl`` head, with
one output channel, pre-trained on low-rank linear-Gaussian tasks (``--regression``).
Columns are standardised on the context first (tabular inputs have unrelated scales; the
module reads inner products), and the target is standardised and restored.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry
from anytask.core.validation import check_features

REGRESSORS: Registry = Registry("regressor", family="icl")


@REGRESSORS.register("icl_regressor", reference="BraInCoRL, Yu et al. 2025, https://arxiv.org/abs/2505.15813",
                     output="values", saveable=True,
                     summary="in-context regression: the pre-trained module emits a linear model from the examples")
class ICLRegressor(Pretrained, RegressorMixin, BaseEstimator):
    def __init__(self, *, module: str = "regression", scale_features: bool = True) -> None:
        self.module = module
        self.scale_features = scale_features

    def fit(self, X, y):
        from anytask.methods.icl.head import load_module

        X = check_features(X).astype(np.float64)
        if y is None:
            raise AnytaskError("ICLRegressor requires y: one numeric target per row of X")
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(y) != len(X):
            raise AnytaskError(f"X has {len(X)} rows but y has {len(y)} targets; they must match")
        if not np.isfinite(y).all():
            raise AnytaskError("y contains NaN or inf; drop those rows before fitting")
        if len(X) < 2:
            raise AnytaskError("in-context regression needs at least 2 examples")
        model = load_module(self.module)
        if model.config.task != "regression":
            raise AnytaskError(f"module {self.module!r} is a {model.config.task} module; pass a regression module")
        self.n_features_in_ = X.shape[1]
        self.col_mean_ = X.mean(0) if self.scale_features else np.zeros(X.shape[1])
        sd = X.std(0) if self.scale_features else np.ones(X.shape[1])
        self.col_scale_ = np.where(sd > 1e-12, sd, 1.0)
        Xs = (X - self.col_mean_) / self.col_scale_
        y_mu, y_sd = y.mean(), y.std()
        y_sd = y_sd if y_sd > 1e-12 else 1.0
        with torch.no_grad():
            ctx = model.read_context(torch.tensor(Xs, dtype=torch.float32)[None],
                                     torch.tensor((y - y_mu) / y_sd, dtype=torch.float32)[None, :, None])
        w = ctx["W"][0, 0].double().numpy() / float(ctx["scale"])  # in standardised-column space
        b = float(ctx["b"][0, 0]) - float(ctx["mu"][0, 0].double().numpy() @ w)
        self.coef_ = y_sd * w / self.col_scale_  # in the caller's feature space
        self.intercept_ = y_mu + y_sd * b - float(self.col_mean_ @ self.coef_)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = check_features(X, n_features=self.n_features_in_, owner="ICLRegressor").astype(np.float64)
        return X @ self.coef_ + self.intercept_

    # -- persistence (anytask.core.io): the fitted linear model; the module is shipped, not saved ----
    def _get_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        check_is_fitted(self, "coef_")
        tensors = {"coef": torch.from_numpy(self.coef_), "col_mean": torch.from_numpy(self.col_mean_),
                   "col_scale": torch.from_numpy(self.col_scale_)}
        return {"intercept": float(self.intercept_), "n_features_in": int(self.n_features_in_)}, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "ICLRegressor":
        reg = cls(**params)
        reg.coef_ = tensors["coef"].double().numpy()
        reg.col_mean_ = tensors["col_mean"].double().numpy()
        reg.col_scale_ = tensors["col_scale"].double().numpy()
        reg.intercept_ = float(extra["intercept"])
        reg.n_features_in_ = int(extra["n_features_in"])
        if reg.coef_.shape != (reg.n_features_in_,):
            raise AnytaskError(f"corrupted saved ICLRegressor: coef has shape {tuple(reg.coef_.shape)}, "
                               f"expected ({reg.n_features_in_},)")
        return reg
