"""Multi-task learning over frozen features: several labelled tasks trained together (``MULTITASK``).

One estimator contract for every method of the family, scikit-learn style, with a dict of tasks in
place of ``(X, y)``::

    model = MULTITASK.get("mmoe")(seed=0).fit({"sst2": (X1, y1), "trec": (X2, y2)})
    model.predict(X, task="trec")               # labels of that task
    model.predict_proba(X, task="sst2")         # columns in model.classes_["sst2"] order
    model.save_pretrained("my-group")           # one folder: config.json + model.safetensors

Features are the frozen backbone's embeddings, ``(N, D)``, or several views of each input, ``(N, L, D)``
(for example the mean-pooled states of L layers: ``anytask.backbones.layer_embeddings``). Methods that
read views (TaskExpert's layers, DTRN's fields) set ``views = True``; the others see the views concatenated.
Every task must have the same feature shape.

A method supplies one ``nn.Module`` (``_build``) whose ``forward(x, t)`` returns task ``t``'s logits; the
training loop is shared: every step draws one balanced batch from every task and minimises the mean of the
per-task cross-entropies (tasks of different sizes weigh the same). With ``skip=True`` each task also keeps a
linear map of the (flattened) input added to its logits, so a method starts from what an independent linear
probe can do and the shared part only has to add to it (chosen by cross-validation on the training data of
the text benchmark; ``docs/methods/multitask.md``).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Mapping

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import Tensor, nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry

MULTITASK: Registry = Registry("multitask model", family="multitask")


def mlp(d_in: int, d_out: int, hidden: int = 0, dropout: float = 0.0) -> nn.Module:
    """Linear (``hidden=0``) or one hidden layer with ReLU; dropout on the input."""
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
    if hidden:
        layers += [nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out)]
    else:
        layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


def expert(d_in: int, d_out: int, dropout: float = 0.0) -> nn.Module:
    """One expert / bottom: Linear -> ReLU (MMoE's and PLE's experts are one-layer ReLU networks)."""
    return nn.Sequential(*([nn.Dropout(dropout)] if dropout else []), nn.Linear(d_in, d_out), nn.ReLU())


def task_key(name: str) -> str:
    return re.sub(r"\s+", "", str(name)).lower()


def check_tasks(tasks, *, views: bool = False) -> tuple[list[str], list[np.ndarray], list[np.ndarray], tuple]:
    """``{name: (X, y)}`` -> names, float32 features, raw labels, and the common feature shape; clear errors for
    an empty mapping or task, features of different shapes, NaN, one class, or labels / names that collide."""
    if not isinstance(tasks, Mapping):
        raise AnytaskError("fit takes a mapping {task name: (X, y)}; got a "
                           f"{type(tasks).__name__}. Wrap one task as {{'name': (X, y)}}")
    if not tasks:
        raise AnytaskError("no tasks given; fit takes {task name: (X, y)} with at least one task")
    names, Xs, ys, shape = [], [], [], None
    seen: dict[str, str] = {}
    for name, pair in tasks.items():
        if not isinstance(name, str) or not name.strip():
            raise AnytaskError(f"task names must be non-empty strings, got {name!r}")
        if task_key(name) in seen:
            raise AnytaskError(f"task names {seen[task_key(name)]!r} and {name!r} collide (they differ only in case or "
                               "spaces, and a saved group or the service could not tell them apart); rename one")
        seen[task_key(name)] = name
        try:
            X, y = pair
        except (TypeError, ValueError):
            raise AnytaskError(f"task {name!r}: give a pair (X, y), got {type(pair).__name__}") from None
        X = np.asarray(X, dtype=np.float32) if not isinstance(X, np.ndarray) or X.dtype != np.float32 else X
        if X.ndim not in (2, 3):
            raise AnytaskError(f"task {name!r}: features must be (N, D) or (N, L, D) views, got shape {X.shape}")
        if len(X) == 0:
            raise AnytaskError(f"task {name!r} is empty (0 examples); drop it or give it labelled examples")
        if not np.isfinite(X).all():
            raise AnytaskError(f"task {name!r}: features contain NaN or inf; drop or impute those rows")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise AnytaskError(f"task {name!r}: {len(X)} feature rows but labels of shape {y.shape}; give one "
                               "label per row")
        if y.dtype == object and len({isinstance(v, str) for v in y.tolist()}) > 1:
            raise AnytaskError(f"task {name!r}: labels mix strings and numbers (e.g. 1 and '1' collide when written "
                               "out); use one type of label per task")
        labels = np.unique(y)
        if len(labels) < 2:
            raise AnytaskError(f"task {name!r} has one class ({labels[0]!r}); a task needs at least 2 classes")
        as_text = {}
        for label in labels.tolist():
            if str(label) in as_text and as_text[str(label)] != label:
                raise AnytaskError(f"task {name!r}: labels {as_text[str(label)]!r} and {label!r} collide (the same "
                                   "when written out); use one type of label per task")
            as_text[str(label)] = label
        if shape is None:
            shape = X.shape[1:]
        elif X.shape[1:] != shape:
            raise AnytaskError(f"task {name!r} has features of shape {X.shape[1:]}, task {names[0]!r} {shape}; "
                               "every task of a group must be embedded by the same backbone (and views)")
        names.append(name)
        Xs.append(np.ascontiguousarray(X, dtype=np.float32))
        ys.append(y)
    return names, Xs, ys, tuple(int(s) for s in shape)


class _Net(nn.Module):
    """A method's body plus the optional per-task linear skip; ``forward(x, t) -> (B, C_t)``."""

    def __init__(self, body: nn.Module, skips: nn.ModuleList | None, flatten: bool, skip_last: bool = False):
        super().__init__()
        self.body, self.skips, self.flatten, self.skip_last = body, skips, flatten, skip_last

    def skip_input(self, x: Tensor) -> Tensor:
        return x[:, -1] if self.skip_last and x.dim() == 3 else x.flatten(1)

    def forward(self, x: Tensor, t: int) -> Tensor:
        out = self.body(x.flatten(1) if self.flatten and x.dim() == 3 else x, t)
        if self.skips is not None:
            out = out + self.skips[t](self.skip_input(x))
        return out


class MultiTaskModel(Pretrained, BaseEstimator):
    """Several tasks over one frozen feature space, trained together. Subclasses implement ``_build``.

    Parameters shared by every method: ``hidden`` (width of experts / bottoms), ``dropout``, ``skip`` (a
    per-task linear map of the input added to the logits: ``True`` of the whole input, ``"last"`` of the last
    view only, ``False`` none), ``steps`` (optimiser steps; each step sees one batch of ``batch_size`` from
    every task), ``lr``, ``weight_decay``, ``seed``, ``progress``.
    """

    views = False  # True: the body reads (N, L, D) views; False: it sees them concatenated

    def __init__(self, *, hidden: int = 128, dropout: float = 0.1, skip: bool | str = True, steps: int = 300,
                 batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 1e-3, seed: int = 0,
                 progress: bool = False):
        self.hidden, self.dropout, self.skip, self.steps = hidden, dropout, skip, steps
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.seed, self.progress = seed, progress

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Every keyword of every ``__init__`` up the class chain (methods add theirs and pass ``**kw`` on), so
        ``get_params``, ``clone`` and saved folders see the shared parameters too."""
        names = set()
        for klass in cls.__mro__:
            if "__init__" in vars(klass) and isinstance(klass, type) and issubclass(klass, MultiTaskModel):
                names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                          if p.kind == p.KEYWORD_ONLY}
        return sorted(names)

    # -- what a method supplies ---------------------------------------------------------------------------
    def _build(self, in_shape: tuple, n_classes: list[int]) -> nn.Module:
        """The body: ``forward(x, t) -> (B, n_classes[t])`` for x of ``in_shape`` (flattened unless ``views``)."""
        raise NotImplementedError

    # -- the contract --------------------------------------------------------------------------------------
    def fit(self, tasks: Mapping) -> "MultiTaskModel":
        names, Xs, ys, shape = check_tasks(tasks)
        self.tasks_ = names
        self.classes_ = {}
        y_idx = []
        for name, y in zip(names, ys):
            classes, idx = np.unique(y, return_inverse=True)
            self.classes_[name] = classes
            y_idx.append(idx)
        self.in_shape_ = shape
        with torch.random.fork_rng():  # seeded, without touching the caller's global RNG
            torch.manual_seed(self.seed)
            self._before_build(len(names))
            self.net_ = self._make_net(shape, [len(self.classes_[n]) for n in names])
            self._train(self.net_, list(range(len(names))), Xs, y_idx, list(self.net_.parameters()))
        self._after_fit(Xs)
        return self

    def _before_build(self, n_tasks: int) -> None:
        """Set fitted state ``_build`` reads (the router's expert counts); nothing by default."""

    def _after_fit(self, Xs: list[np.ndarray]) -> None:
        """Keep what a method needs from the training inputs (the router's task centroids); nothing by default."""

    def _make_net(self, shape: tuple, n_classes: list[int]) -> _Net:
        if self.skip not in (True, False, "last"):
            raise AnytaskError(f"skip={self.skip!r}: use True (a linear map of the whole input), 'last' (of the last "
                               "view only) or False")
        flat = int(np.prod(shape))
        body_shape = shape if self.views else (flat,)
        body = self._build(body_shape, n_classes)
        width = shape[-1] if self.skip == "last" else flat
        skips = nn.ModuleList(nn.Linear(width, c) for c in n_classes) if self.skip else None
        return _Net(body, skips, flatten=not self.views, skip_last=self.skip == "last")

    def _train(self, net: nn.Module, task_ids: list[int], Xs: list[np.ndarray], ys: list[np.ndarray],
               params: list[nn.Parameter]) -> None:
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        X_t = [torch.from_numpy(X) for X in Xs]
        y_t = [torch.from_numpy(np.asarray(y, dtype=np.int64)) for y in ys]
        orders = [rng.permutation(len(y)) for y in ys]
        cursor = [0] * len(ys)
        net.train()
        self.loss_curve_ = []
        for step in tqdm(range(self.steps), desc=f"{type(self).__name__} fit", disable=not self.progress):
            lr = self.lr * 0.5 * (1 + math.cos(math.pi * step / max(self.steps, 1)))  # cosine to zero
            for group in opt.param_groups:
                group["lr"] = lr
            losses = []
            for j, t in enumerate(task_ids):
                n = len(y_t[j])
                b = min(self.batch_size, n)
                if cursor[j] + b > n:
                    orders[j], cursor[j] = rng.permutation(n), 0
                idx = torch.from_numpy(orders[j][cursor[j]:cursor[j] + b])
                cursor[j] += b
                losses.append(nn.functional.cross_entropy(net(X_t[j][idx], t), y_t[j][idx]))
            loss = torch.stack(losses).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.loss_curve_.append(float(loss.detach()))
        net.eval()

    def _task_index(self, task) -> int:
        self._check_fitted()
        if task is None:
            if len(self.tasks_) == 1:
                return 0
            raise AnytaskError(f"this group holds {len(self.tasks_)} tasks; say which with task=... (one of "
                               f"{', '.join(map(repr, self.tasks_))})")
        if task not in self.tasks_:
            raise AnytaskError(f"unknown task {task!r}; this group was fitted on {', '.join(map(repr, self.tasks_))}")
        return self.tasks_.index(task)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise AnytaskError(f"this {type(self).__name__} is not fitted yet; call fit({{task: (X, y)}}) first")

    def _features(self, X) -> Tensor:
        X = np.asarray(X, dtype=np.float32)
        if X.shape == self.in_shape_:
            raise AnytaskError("X is one sample; pass a batch of one: X[None]")
        if X.shape[1:] != self.in_shape_:
            raise AnytaskError(f"X has features of shape {X.shape[1:]}, this group was fitted on {self.in_shape_}; "
                               "embed inputs with the same backbone (and views)")
        if len(X) == 0:
            raise AnytaskError("X is empty (0 samples)")
        if not np.isfinite(X).all():
            raise AnytaskError("X contains NaN or inf; drop or impute those rows before predicting")
        return torch.from_numpy(np.ascontiguousarray(X))

    def decision_function(self, X, *, task=None) -> np.ndarray:
        t = self._task_index(task)
        x = self._features(X)
        with torch.no_grad():
            return torch.cat([self.net_(x[i:i + 1024], t) for i in range(0, len(x), 1024)]).numpy()

    def predict_proba(self, X, *, task=None) -> np.ndarray:
        z = torch.from_numpy(self.decision_function(X, task=task))
        return torch.softmax(z.double(), dim=1).numpy()

    def predict(self, X, *, task=None) -> np.ndarray:
        t = self._task_index(task)
        return self.classes_[self.tasks_[t]][np.argmax(self.decision_function(X, task=task), axis=1)]

    def score(self, X, y, *, task=None) -> float:
        return float(np.mean(self.predict(X, task=task) == np.asarray(y)))

    def n_parameters(self) -> int:
        self._check_fitted()
        return sum(p.numel() for p in self.net_.parameters())

    # -- folders ---------------------------------------------------------------------------------------
    def _saved_params(self) -> dict:
        return {k: v for k, v in self.get_params(deep=False).items() if k != "progress"}

    def _extra_state(self) -> dict:
        return {}

    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        self._check_fitted()
        extra = {"tasks": self.tasks_, "in_shape": list(self.in_shape_),
                 "classes": {n: self.classes_[n].tolist() for n in self.tasks_}, **self._extra_state()}
        return extra, dict(self.net_.state_dict())

    def _restore_extra(self, extra: dict) -> None:
        pass

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "MultiTaskModel":
        try:
            model = cls(**params)
        except TypeError as e:
            raise AnytaskError(f"saved {cls.__name__} has parameters this version does not know ({e})") from None
        model.tasks_ = list(extra["tasks"])
        model.in_shape_ = tuple(extra["in_shape"])
        model.classes_ = {n: np.asarray(c, dtype=object if any(isinstance(v, str) for v in c) else None)
                          for n, c in extra["classes"].items()}
        model._restore_extra(extra)
        model.net_ = model._make_net(model.in_shape_, [len(model.classes_[n]) for n in model.tasks_])
        try:
            model.net_.load_state_dict(tensors)
        except RuntimeError as e:
            raise AnytaskError(f"saved {cls.__name__} weights do not match its configuration: {e}") from None
        model.net_.eval()
        return model

    def _card_fields(self) -> dict:
        return {"tasks": ", ".join(f"`{n}` ({len(self.classes_[n])} classes)" for n in self.tasks_)}
