"""Baselines for task-agnostic streams, one small class each, all with ``partial_fit``/``predict``.

- ``FineTune``: one MLP trained on whatever arrives (the lower bound).
- ``Replay``: the same MLP, every batch mixed with a same-size draw from one reservoir
  memory (experience replay; Chaudhry et al. 2019, https://arxiv.org/abs/1902.10486).
- ``EWC``: the same MLP with elastic weight consolidation (Kirkpatrick et al. 2017,
  https://arxiv.org/abs/1612.00796); it needs task boundaries, which it reads from ``task=``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch.nn.functional import cross_entropy

from anytask.methods.continual.nets import GrowingMLP, Reservoir
from anytask.core.validation import check_features


class FineTune(BaseEstimator):
    def __init__(self, *, hidden: int = 256, lr: float = 1e-3, seed: int = 0) -> None:
        self.hidden = hidden
        self.lr = lr
        self.seed = seed

    def _setup(self, X, y):
        X = check_features(X, n_features=getattr(self, "n_features_in_", None))
        if not hasattr(self, "net_"):
            self.n_features_in_ = X.shape[1]
            self.labels_, self.index_ = [], {}
            self.net_ = GrowingMLP(X.shape[1], 1, self.hidden, seed=self.seed)
            self.opt_ = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        for label in np.asarray(y).tolist():
            if label not in self.index_:
                self.index_[label] = len(self.labels_)
                self.labels_.append(label)
        n_before = self.net_.out.out_features
        self.net_.grow(len(self.labels_))
        if self.net_.out.out_features != n_before:
            self.opt_ = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        return X, np.asarray([self.index_[v] for v in np.asarray(y).tolist()], dtype=np.int64)

    def _step(self, X, y, extra_loss=None):
        loss = cross_entropy(self.net_(torch.from_numpy(X)), torch.from_numpy(y))
        if extra_loss is not None:
            loss = loss + extra_loss()
        self.opt_.zero_grad()
        loss.backward()
        self.opt_.step()

    def partial_fit(self, X, y, *, task=None):
        X, yi = self._setup(X, y)
        self._step(X, yi)
        return self

    def finish(self):
        return self

    def predict(self, X, *, task=None):
        X = check_features(X, n_features=self.n_features_in_)
        with torch.no_grad():
            idx = self.net_(torch.from_numpy(X))[:, : len(self.labels_)].argmax(1).numpy()
        return np.asarray(self.labels_, dtype=object)[idx]

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net_.parameters())


class Replay(FineTune):
    def __init__(self, *, hidden: int = 256, lr: float = 1e-3, memory: int = 1000, seed: int = 0) -> None:
        super().__init__(hidden=hidden, lr=lr, seed=seed)
        self.memory = memory

    def partial_fit(self, X, y, *, task=None):
        X, yi = self._setup(X, y)
        if not hasattr(self, "buffer_"):
            self.buffer_ = Reservoir(self.memory, X.shape[1], seed=self.seed)
        if len(self.buffer_):
            Xm, ym = self.buffer_.sample(len(X))
            X_all, y_all = np.concatenate([X, Xm]), np.concatenate([yi, ym])
        else:
            X_all, y_all = X, yi
        self._step(X_all, y_all)
        self.buffer_.add(X, yi)
        return self


class EWC(FineTune):
    def __init__(self, *, hidden: int = 256, lr: float = 1e-3, strength: float = 100.0, seed: int = 0) -> None:
        super().__init__(hidden=hidden, lr=lr, seed=seed)
        self.strength = strength

    def partial_fit(self, X, y, *, task=None):
        X, yi = self._setup(X, y)
        if not hasattr(self, "anchors_"):
            self.anchors_, self.task_ = [], task
            self.recent_ = []
        if task != self.task_:  # a boundary: consolidate what was learned on the last task
            self._consolidate()
            self.task_ = task
        self.recent_ = (self.recent_ + [(X, yi)])[-20:]
        self._step(X, yi, extra_loss=self._penalty if self.anchors_ else None)
        return self

    def _consolidate(self):
        params = {n: p for n, p in self.net_.named_parameters()}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        for X, y in self.recent_:  # diagonal empirical Fisher on the task's last batches
            self.net_.zero_grad()
            cross_entropy(self.net_(torch.from_numpy(X)), torch.from_numpy(y)).backward()
            for n, p in params.items():
                fisher[n] += p.grad.detach() ** 2 / len(self.recent_)
        self.anchors_.append(({n: p.detach().clone() for n, p in params.items()}, fisher))
        self.net_.zero_grad()

    def _penalty(self):
        total = 0.0
        for n, p in self.net_.named_parameters():
            for anchor, fisher in self.anchors_:
                a, f = anchor[n], fisher[n]
                q = p[: a.shape[0]]  # the output layer may have grown since: constrain the old rows
                total = total + (f * (q - a) ** 2).sum()
        return self.strength / 2 * total
