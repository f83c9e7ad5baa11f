"""Concept bottleneck: a sparse linear probe over named SAE concepts (DN-CBM).

Rao et al. 2024, Discover-then-Name, https://arxiv.org/abs/2407.14499 (card 03). Frozen
features are mapped to concept activations by a task-agnostic sparse autoencoder
(``anytask.methods.concepts``); a multinomial logistic regression with an L1 penalty on its weights
(solved by FISTA: proximal gradient with momentum, full batch, deterministic) picks a few
concepts per class. ``explain(X)`` says which named concepts drove each prediction:
contribution = weight of the predicted class x activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead


@dataclass(frozen=True)
class ConceptContribution:
    index: int
    name: str
    activation: float
    weight: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    label: object
    probability: float
    concepts: tuple[ConceptContribution, ...]


@HEADS.register("concept_bottleneck", reference="DN-CBM, Rao et al. 2024, https://arxiv.org/abs/2407.14499",
                summary="sparse (L1) linear probe over named sparse-autoencoder concepts; explain() names them",
                output="classes", saveable=True, needs_backbone=True)
class ConceptBottleneck(BaseHead):
    _parameter_constraints = {"concepts": [str], "l1": [Interval(Real, 0, None, closed="left")],
                              "max_iter": [Interval(Integral, 1, None, closed="left")], "backbone": [str, None]}

    def __init__(self, *, concepts: str = "minilm", l1: float = 1e-3, max_iter: int = 500,
                 backbone: str | None = None) -> None:
        self.concepts = concepts
        self.l1 = l1
        self.max_iter = max_iter
        self.backbone = backbone

    def concept_model(self):
        from anytask.methods.concepts import load_concept_model

        model = load_concept_model(self.concepts)
        if self.backbone is not None and model.backbone and model.backbone.split("|")[0] != self.backbone:
            raise AnytaskError(f"concept model {self.concepts!r} was trained on {model.backbone.split('|')[0]!r} "
                               f"embeddings, but this head is used with backbone {self.backbone!r}")
        return model

    def _activations(self, X: Tensor) -> Tensor:
        model = self.concept_model()
        if X.shape[1] != model.dim:
            raise AnytaskError(f"concept model {self.concepts!r} takes {model.dim}-d embeddings "
                               f"(backbone {model.backbone.split('|')[0] or 'unknown'}); X has {X.shape[1]} features")
        return torch.from_numpy(model.activations(X.numpy())).double()

    def _fit(self, X: Tensor, y: Tensor) -> None:
        if self.l1 < 0:
            raise ValueError(f"l1 must be >= 0, got {self.l1}")
        F = self._activations(X)  # (N, h)
        n, h = F.shape
        c = len(self.classes_)
        Y = torch.nn.functional.one_hot(y, c).double()
        # Lipschitz constant of the mean cross-entropy gradient: <= ||F||_2^2 / n (+1 for the bias)
        lipschitz = (torch.linalg.matrix_norm(F, ord=2) ** 2 / n + 1).item()
        step = 1.0 / lipschitz
        W = torch.zeros(c, h, dtype=torch.float64)
        b = torch.zeros(c, dtype=torch.float64)
        W_prev, b_prev, t = W.clone(), b.clone(), 1.0
        for _ in range(self.max_iter):
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            mom = (t - 1) / t_next
            Wy, by = W + mom * (W - W_prev), b + mom * (b - b_prev)
            P = torch.softmax(F @ Wy.T + by, dim=1)  # (N, C)
            G = (P - Y) / n
            W_prev, b_prev = W, b
            W = Wy - step * (G.T @ F)
            W = W.sign() * (W.abs() - step * self.l1).clamp_min(0)  # soft threshold: the L1 prox
            b = by - step * G.sum(0)
            t = t_next
        self.coef_ = W.float()
        self.intercept_ = b.float()

    def _logits(self, X: Tensor) -> Tensor:
        return self._activations(X) @ self.coef_.double().T + self.intercept_.double()

    def n_active_concepts(self) -> int:
        return int((self.coef_.abs() > 0).any(0).sum())

    def explain(self, X, top: int = 5) -> list[Explanation]:
        """Per input: the predicted label, its probability and the named concepts behind it."""
        Xt = self._validate_for_predict(X)
        A = self._activations(Xt)
        proba = torch.softmax(A @ self.coef_.double().T + self.intercept_.double(), dim=1)
        names = self.concept_model().names
        out = []
        for a, p in zip(A, proba):
            k = int(p.argmax())
            contrib = a * self.coef_[k].double()
            order = contrib.abs().argsort(descending=True)[:top]
            concepts = tuple(ConceptContribution(int(i), names[int(i)], float(a[i]), float(self.coef_[k, i]),
                                                 float(contrib[i])) for i in order if contrib[i] != 0)
            out.append(Explanation(self.classes_[k], float(p[k]), concepts))
        return out

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_, self.intercept_ = tensors["coef"], tensors["intercept"]
