"""The Consciousness Prior's attention bottleneck, tested where its claim is testable: sparse factor graphs.

Bengio 2017, "The Consciousness Prior", https://arxiv.org/abs/1709.08568 (card 39) — a position paper
without an architecture or a benchmark. Its testable implication: when the true dependencies form a
sparse factor graph, a model that attends to a few high-level variables (a top-k bottleneck) should
generalise better from little data, and under shifts of variables it does not need, than a dense model.

* ``factor_graph(...)``: a random sparse Bayesian network over discrete variables (each has 1-2 parents
  with peaked conditional tables: factors of size 2-3), a target variable, its Markov blanket, exact
  posteriors p(target | everything else) (the Bayes-optimal reference), and a shifted copy in which
  every conditional table but the target's and its children's is redrawn — p(target | blanket) is
  unchanged, the rest moves. ``dense=True`` gives the control: the target has many parents.
* ``AttentionBottleneck``: each variable becomes a vector (its identity plus its value); a learned query
  scores them; the ``k`` best are kept (hard top-k, straight-through: the kept weights stay soft, so the
  scores get gradients) and summed into the "conscious state" that a small MLP reads. ``k=None`` is the
  soft version (softmax over every variable). ``DenseMLP`` is the dense baseline over the one-hot inputs.
  Both are scikit-learn classifiers over integer-coded variables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

MODELS: Registry = Registry("model", family="mechanisms")


@dataclass
class FactorGraph:
    parents: list[list[int]]
    tables: list[np.ndarray]  # tables[i][(parent values...)] -> distribution over variable i's values
    target: int
    values: int

    def blanket(self) -> set[int]:
        children = [i for i, ps in enumerate(self.parents) if self.target in ps]
        spouses = {p for c in children for p in self.parents[c] if p != self.target}
        return set(self.parents[self.target]) | set(children) | spouses

    def sample(self, n: int, rng) -> np.ndarray:
        X = np.zeros((n, len(self.parents)), dtype=np.int64)
        for i, ps in enumerate(self.parents):  # variables are in topological order
            probs = (self.tables[i][tuple(X[:, p] for p in ps)] if ps
                     else np.broadcast_to(self.tables[i], (n, self.values)))
            cum = probs.cumsum(-1)
            X[:, i] = (rng.random((n, 1)) > cum).sum(-1).clip(max=self.values - 1)
        return X

    def posterior(self, X: np.ndarray) -> np.ndarray:
        """Exact p(target | every other variable) ``(n, values)``: its own table times its children's."""
        logp = np.zeros((len(X), self.values))
        for v in range(self.values):
            Z = X.copy()
            Z[:, self.target] = v
            for i in [self.target] + [c for c, ps in enumerate(self.parents) if self.target in ps]:
                ps = self.parents[i]
                probs = self.tables[i][tuple(Z[:, p] for p in ps)] if ps else np.broadcast_to(self.tables[i],
                                                                                               (len(Z), self.values))
                logp[:, v] += np.log(probs[np.arange(len(Z)), Z[:, i]])
        p = np.exp(logp - logp.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)


def _table(rng, n_parents: int, values: int, peak: float) -> np.ndarray:
    return rng.dirichlet(np.full(values, peak), size=(values,) * n_parents) if n_parents else rng.dirichlet(
        np.full(values, 1.0))


def factor_graph(n_vars: int = 20, values: int = 3, *, dense: bool = False, peak: float = 0.3,
                 seed: int = 0) -> tuple[FactorGraph, FactorGraph]:
    """A random sparse network and its shifted copy (see the module docstring). The target is a middle variable
    with 2 parents (``dense``: 8) and whatever children the draw gives it."""
    if n_vars < 6 or values < 2:
        raise AnytaskError("a factor graph here needs at least 6 variables of at least 2 values")
    rng = np.random.default_rng(seed)
    target = n_vars // 2
    parents: list[list[int]] = []
    for i in range(n_vars):
        if i == 0:
            parents.append([])
        elif i == target:
            parents.append(sorted(rng.choice(i, size=min(i, 8 if dense else 2), replace=False).tolist()))
        else:
            parents.append(sorted(rng.choice(i, size=min(i, int(rng.integers(1, 3))), replace=False).tolist()))
    if dense:  # joint tables over 8 parents are huge: the target is a noisy function of their sum instead
        tables = [_table(rng, len(ps), values, peak) if i != target else None for i, ps in enumerate(parents)]
        weights = rng.dirichlet(np.full(values, peak), size=values * len(parents[target]))
        grid = np.indices((values,) * len(parents[target])).sum(0) % values
        tables[target] = weights[grid]
    else:
        tables = [_table(rng, len(ps), values, peak) for ps in parents]
    graph = FactorGraph(parents, tables, target, values)
    keep = {target} | {c for c, ps in enumerate(parents) if target in ps}
    shifted = [t if i in keep else _table(rng, len(parents[i]), values, peak) for i, t in enumerate(tables)]
    return graph, FactorGraph(parents, shifted, target, values)


def split_target(graph: FactorGraph, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (every variable but the target, in order) and the target."""
    return np.delete(X, graph.target, axis=1), X[:, graph.target]


class _Selector(nn.Module):
    def __init__(self, n_vars: int, values: int, width: int, k: int | None, classes: int) -> None:
        super().__init__()
        self.k = k
        self.identity = nn.Parameter(0.5 * torch.randn(n_vars, width))
        self.value = nn.Embedding(n_vars * values, width)
        self.query = nn.Parameter(0.5 * torch.randn(width))
        self.key = nn.Linear(width, width, bias=False)
        self.values = values
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, classes))

    def weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.arange(x.shape[1], device=x.device) * self.values
        e = self.identity + self.value(x + offsets)  # (B, V, w)
        w = torch.softmax(self.key(e) @ self.query / e.shape[-1] ** 0.5, dim=-1)  # (B, V)
        if self.k is not None:
            mask = torch.zeros_like(w).scatter_(1, w.topk(self.k, dim=1).indices, 1.0)
            w = mask * w / (mask * w).sum(1, keepdim=True)  # the kept weights stay soft: the scores get gradients
        return w, e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, e = self.weights(x)
        return self.head((w.unsqueeze(-1) * e).sum(1))  # the "conscious state": a weighted sum of the chosen few


class _Trainable(ClassifierMixin, BaseEstimator):
    def _check(self, X, y=None):
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "iu" or (X.size and X.min() < 0):
            raise AnytaskError("X must be a 2-D array of non-negative integer codes (one column per variable)")
        return X

    def fit(self, X, y):
        X, y = self._check(X), np.asarray(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.n_values_ = int(X.max()) + 1 if self.n_values is None else int(self.n_values)
        torch.manual_seed(self.seed)
        self.model_ = self._build(X.shape[1], len(self.classes_))
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y_idx)
        gen = torch.Generator().manual_seed(self.seed)
        steps = max(self.min_steps, self.epochs * int(np.ceil(len(X) / self.batch_size)))
        for _ in range(steps):
            idx = torch.randint(len(X), (min(self.batch_size, len(X)),), generator=gen)
            loss = nn.functional.cross_entropy(self.model_(self._inputs(Xt[idx])), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.model_.eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = torch.as_tensor(self._check(X)).clamp(max=self.n_values_ - 1)
        with torch.no_grad():
            return torch.softmax(self.model_(self._inputs(X)), -1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]


@MODELS.register("attention_bottleneck", reference="Bengio 2017, https://arxiv.org/abs/1709.08568",
                 summary="top-k attention over variables (straight-through), a small MLP on the conscious state; "
                         "k=None: soft attention", input="features", output="classes")
class AttentionBottleneck(_Trainable):
    def __init__(self, *, k: int | None = 3, width: int = 32, epochs: int = 60, min_steps: int = 300,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4, n_values: int | None = None,
                 seed: int = 0) -> None:
        self.k, self.width, self.epochs, self.min_steps = k, width, epochs, min_steps
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.n_values, self.seed = n_values, seed

    def _build(self, n_vars: int, classes: int) -> nn.Module:
        if self.k is not None and not 1 <= self.k <= n_vars:
            raise AnytaskError(f"k={self.k!r}: choose 1..{n_vars} variables (or None for soft attention)")
        return _Selector(n_vars, self.n_values_, self.width, self.k, classes)

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        return X

    def selected(self, X) -> np.ndarray:
        """How often each variable is among the attended ones (k best weights), over the rows of X ``(V,)``."""
        check_is_fitted(self, "model_")
        X = torch.as_tensor(self._check(X)).clamp(max=self.n_values_ - 1)
        with torch.no_grad():
            w, _ = self.model_.weights(X)
        top = w.topk(self.k or 3, dim=1).indices
        return torch.zeros_like(w).scatter_(1, top, 1.0).mean(0).numpy()


@MODELS.register("dense_mlp", reference="the dense baseline of Bengio 2017's implication (card 39)",
                 summary="an MLP over every variable, one-hot", input="features", output="classes")
class DenseMLP(_Trainable):
    def __init__(self, *, width: int = 64, epochs: int = 60, min_steps: int = 300, batch_size: int = 64,
                 lr: float = 3e-3, weight_decay: float = 1e-4, n_values: int | None = None, seed: int = 0) -> None:
        self.width, self.epochs, self.min_steps = width, epochs, min_steps
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.n_values, self.seed = n_values, seed

    def _build(self, n_vars: int, classes: int) -> nn.Module:
        return nn.Sequential(nn.Linear(n_vars * self.n_values_, self.width), nn.ReLU(),
                             nn.Linear(self.width, self.width), nn.ReLU(), nn.Linear(self.width, classes))

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(X, self.n_values_).flatten(1).float()
