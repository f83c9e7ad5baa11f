"""Linear probe: multinomial logistic regression on frozen features.

The standard baseline for frozen representations (Alain & Bengio 2016,
https://arxiv.org/abs/1610.01644; the CLIP linear-probe protocol, Radford et al. 2021).
It minimises the same objective as scikit-learn's ``LogisticRegression(C=C)`` with
L-BFGS in float64 (binary problems use one weight vector, exactly as scikit-learn
does), so the two agree to optimisation tolerance; a test checks it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from anytask.methods.heads.base import HEADS
from anytask.methods.heads.base import BaseHead


@HEADS.register("linear_probe", reference="Alain & Bengio 2016, https://arxiv.org/abs/1610.01644",
                summary="multinomial logistic regression (L2, C=1), agrees with scikit-learn's",
                output="classes", saveable=True)
class LinearProbe(BaseHead):
    """Multinomial logistic regression with an L2 penalty on the weights (not the bias)."""

    def __init__(self, *, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, X: Tensor, y: Tensor) -> None:
        if self.C <= 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        X64 = X.double()
        n_classes = len(self.classes_)
        n_out = 1 if n_classes == 2 else n_classes
        W = torch.zeros(n_out, X.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(n_out, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=self.max_iter, history_size=20,
                                tolerance_grad=self.tol, tolerance_change=1e-12,
                                line_search_fn="strong_wolfe")
        n = X.shape[0]

        def closure() -> Tensor:
            opt.zero_grad()
            logits = X64 @ W.T + b  # (N, n_out)
            if n_out == 1:
                data = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.double(), reduction="sum")
            else:
                data = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            loss = (data + 0.5 / self.C * (W * W).sum()) / n
            loss.backward()
            return loss

        opt.step(closure)
        self.n_iter_ = np.array([opt.state[W].get("n_iter", 0)])
        self.coef_ = W.detach().float()
        self.intercept_ = b.detach().float()

    def _logits(self, X: Tensor) -> Tensor:
        z = X.double() @ self.coef_.double().T + self.intercept_.double()  # (N, n_out)
        return torch.cat([torch.zeros_like(z), z], dim=1) if z.shape[1] == 1 else z

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_, self.intercept_ = tensors["coef"], tensors["intercept"]
