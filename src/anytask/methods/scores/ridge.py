"""Ridge regression on frozen features: the strongest simple baseline for a score head.

Hoerl & Kennard 1970 (https://doi.org/10.1080/00401706.1970.10488634). The penalty is chosen
among ``alphas`` by efficient leave-one-out cross-validation on the training rows (scikit-learn's
``RidgeCV``), so no setting is tuned on a test split.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from anytask.methods.scores.base import SCORERS, BaseScorer


@SCORERS.register("ridge", reference="Hoerl & Kennard 1970, https://doi.org/10.1080/00401706.1970.10488634",
                  summary="ridge regression, penalty chosen by leave-one-out CV on the training rows",
                  output="values", saveable=True)
class RidgeScorer(BaseScorer):
    def __init__(self, *, alphas: tuple = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), order: list | None = None) -> None:
        self.alphas = alphas
        self.order = order

    def _fit(self, X: Tensor, y: Tensor) -> None:
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.asarray(self.alphas, dtype=float)).fit(X.double().numpy(), y.double().numpy())
        self.alpha_ = float(model.alpha_)
        self.coef_ = model.coef_.astype(np.float64)
        self.intercept_ = float(model.intercept_)

    def _unit_scores(self, X: Tensor) -> Tensor:
        return X.double() @ torch.from_numpy(self.coef_) + self.intercept_

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": torch.from_numpy(self.coef_), "intercept": torch.tensor([self.intercept_], dtype=torch.float64),
                "alpha": torch.tensor([self.alpha_], dtype=torch.float64)}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_ = tensors["coef"].double().numpy()
        self.intercept_ = float(tensors["intercept"][0])
        self.alpha_ = float(tensors["alpha"][0])
