"""Per-task model selection by cross-validation: a group that shares only where sharing helps.

Not one of the papers: the guard a user of a multi-task method needs. Training tasks together helps the tasks
that really share something (the three sentiment tasks of ``benchmarks/multitask/text.json``) and hurts others
(banking77's 77 intents with 64 rows lose 5-10 points under every joint method there), and which is which is not
known in advance. So for every task, ``folds``-fold cross-validation on its own training rows compares

* the jointly trained model (``base``: any method of ``MULTITASK``, trained on the training folds of every task);
* the task's own logistic regression on the last view (the sentence embedding) and on all views concatenated,
  each with C chosen by an inner ``folds``-fold cross-validation (the ``lr_cv`` baseline of the benchmark);

and the task keeps whichever predicted its held-out rows best (``rule="best"``; a tie goes to the simpler, in the
order probe on the last view, probe on all views, joint model), or (``rule="one_se"``, Breiman's one-standard-error
rule on paired scores) the simplest candidate whose accuracy is within one standard error of the best's, the error
taken over the held-out rows of the difference between the two (sharing must earn its place). The joint model and
the chosen probes are then refitted on all rows. Nothing but the training rows is read; ``choice_`` and
``cv_accuracy_`` say what was chosen and why.

    model = MULTITASK.get("guarded")(base="shared_bottom").fit({"sst2": (X1, y1), "banking77": (X2, y2)})
    model.choice_        # {"sst2": "joint", "banking77": "probe_last"}

Cost: ``folds + 1`` fits of ``base`` and ``folds + 1`` cross-validated probes per task and view.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.methods.multitask.base import MULTITASK, MultiTaskModel, check_tasks

CANDIDATES = ("probe_last", "probe_views", "joint")  # in order of preference on a tie


def fold_ids(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold of every row: each class's rows are shuffled and dealt round-robin from a random start,
    so every fold sees every class that has at least ``folds`` rows."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(y), dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        out[idx] = (start + np.arange(len(idx))) % folds
        start = (start + len(idx)) % folds
    return out


def probe_cv(X: np.ndarray, y: np.ndarray, Cs, folds: int, seed: int):
    """Logistic regression with C chosen by ``folds``-fold cross-validation on (X, y), refitted on all of it."""
    from sklearn.linear_model import LogisticRegression

    ids = fold_ids(y, folds, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at large C on tiny folds
        scores = []
        for C in Cs:
            hits = []
            for f in range(folds):
                tr, va = ids != f, ids == f
                if va.any() and len(np.unique(y[tr])) > 1:
                    clf = LogisticRegression(C=C, max_iter=2000).fit(X[tr], y[tr])
                    hits.append(clf.predict(X[va]) == y[va])
            scores.append(np.concatenate(hits).mean() if hits else 0.0)
        return LogisticRegression(C=float(Cs[int(np.argmax(scores))]), max_iter=2000).fit(X, y)


RULES = ("best", "one_se")


def choose(hits: dict[str, np.ndarray], rule: str) -> str:
    """The candidate kept, from each candidate's per-row hits on the same held-out rows (``hits`` in order of
    preference: simplest first)."""
    kinds = list(hits)
    acc = {k: float(h.mean()) for k, h in hits.items()}
    best = max(kinds, key=lambda k: (acc[k], -kinds.index(k)))  # a tie goes to the simpler
    if rule == "best":
        return best
    for k in kinds:  # one_se: the simplest within one standard error of the paired difference to the best
        d = hits[best].astype(float) - hits[k].astype(float)
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        if acc[k] >= acc[best] - se:
            return k
    return best


def _view(X: np.ndarray, kind: str) -> np.ndarray:
    if X.ndim == 2:
        return X
    return X[:, -1] if kind == "probe_last" else X.reshape(len(X), -1)


class _Probe(nn.Module):
    """A fitted logistic regression as logits over the task's classes (softmax of them = its predict_proba)."""

    def __init__(self, d: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(d, 1 if n_classes == 2 else n_classes)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear(x)
        return torch.cat([torch.zeros_like(z), z], 1) if z.shape[1] == 1 else z


class _GuardedNet(nn.Module):
    def __init__(self, joint: nn.Module, probes: dict[str, _Probe]):
        super().__init__()
        self.joint, self.probes = joint, nn.ModuleDict(probes)


@MULTITASK.register("guarded", reference="per-task choice by cross-validation between a joint model and the "
                    "task's own logistic regression (no paper; see the module docstring)", saveable=True,
                    summary="a base method trained jointly, kept only for the tasks where cross-validation on the "
                    "training rows says it beats the task's own logistic regression")
class Guarded(MultiTaskModel):
    """``base`` trained jointly, kept for the tasks where cross-validation on the training rows says it beats the
    task's own cross-validated logistic regression. The shared parameters (``hidden``, ``steps``, ``seed``...)
    go to ``base``; ``folds`` and ``Cs`` set the cross-validation."""

    def __init__(self, *, base: str = "shared_bottom", folds: int = 3, rule: str = "best",
                 Cs=(0.1, 1.0, 10.0, 100.0, 1000.0), **kw):
        super().__init__(**kw)
        self.base, self.folds, self.rule, self.Cs = base, folds, rule, Cs

    def _base_model(self) -> MultiTaskModel:
        if self.base == "guarded" or self.base not in MULTITASK:
            raise AnytaskError(f"base={self.base!r}: name a multi-task method to guard, one of "
                               f"{', '.join(n for n in MULTITASK.names() if n != 'guarded')}")
        shared = {k: getattr(self, k) for k in MultiTaskModel._get_param_names()}
        return MULTITASK.get(self.base)(**shared)

    def fit(self, tasks) -> "Guarded":
        if not isinstance(self.folds, int) or self.folds < 2:
            raise AnytaskError(f"folds={self.folds!r}: cross-validation needs an integer of at least 2")
        if self.rule not in RULES:
            raise AnytaskError(f"rule={self.rule!r}: use 'best' (the highest cross-validated accuracy) or 'one_se' "
                               "(the simplest candidate within one standard error of it)")
        if len(self.Cs) == 0 or min(self.Cs) <= 0:
            raise AnytaskError(f"Cs={self.Cs!r}: give one or more positive regularisation strengths")
        names, Xs, ys, shape = check_tasks(tasks)
        self._base_model()  # a bad base fails before any fit
        self.tasks_, self.in_shape_ = names, shape
        self.classes_ = {n: np.unique(y) for n, y in zip(names, ys)}
        kinds = [k for k in CANDIDATES if k != "probe_views" or len(shape) == 2]
        ids = [fold_ids(y, self.folds, self.seed + i) for i, y in enumerate(ys)]
        hits = {n: {k: [] for k in kinds} for n in names}
        for f in range(self.folds):
            part = {}
            for n, X, y, i in zip(names, Xs, ys, ids):
                if (i == f).any() and len(np.unique(y[i != f])) > 1:  # a task too small for this fold sits it out
                    part[n] = (X[i != f], y[i != f])
            if not part:
                continue
            joint = self._base_model().fit(part)
            for n, X, y, i in zip(names, Xs, ys, ids):
                if n not in part:
                    continue
                Xv, yv = X[i == f], y[i == f]
                hits[n]["joint"].append(joint.predict(Xv, task=n) == yv)
                for k in kinds[:-1]:
                    clf = probe_cv(_view(part[n][0], k), part[n][1], self.Cs, self.folds, self.seed)
                    hits[n][k].append(clf.predict(_view(Xv, k)) == yv)
        # None where a task was too small to sit any fold: it keeps the joint model
        self.cv_accuracy_ = {n: {k: float(np.concatenate(h).mean()) if h else None for k, h in hits[n].items()}
                             for n in names}
        self.choice_ = {n: "joint" if hits[n]["joint"] == [] else
                        choose({k: np.concatenate(h) for k, h in hits[n].items()}, self.rule) for n in names}
        self.model_ = self._base_model().fit(dict(zip(names, zip(Xs, ys))))
        probes = {}
        for t, (n, X, y) in enumerate(zip(names, Xs, ys)):
            if self.choice_[n] == "joint":
                continue
            clf = probe_cv(_view(X, self.choice_[n]), y, self.Cs, self.folds, self.seed)
            probe = _Probe(clf.coef_.shape[1], len(self.classes_[n]))
            with torch.no_grad():
                probe.linear.weight.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
                probe.linear.bias.copy_(torch.from_numpy(clf.intercept_.astype(np.float32)))
            probes[str(t)] = probe
        self.net_ = _GuardedNet(self.model_.net_, probes).eval()
        self.loss_curve_ = self.model_.loss_curve_
        return self

    def decision_function(self, X, *, task=None) -> np.ndarray:
        t = self._task_index(task)
        if self.choice_[self.tasks_[t]] == "joint":
            return self.model_.decision_function(X, task=self.tasks_[t])
        x = _view(self._features(X).numpy(), self.choice_[self.tasks_[t]])
        with torch.no_grad():
            return self.net_.probes[str(t)](torch.from_numpy(np.ascontiguousarray(x))).numpy()

    # -- folders: the base model's own state under "joint.", the probes under "probes." -------------------
    def _get_state(self):
        self._check_fitted()
        joint_extra, joint_tensors = self.model_._get_state()
        extra = {"tasks": self.tasks_, "in_shape": list(self.in_shape_),
                 "classes": {n: self.classes_[n].tolist() for n in self.tasks_}, "choice": self.choice_,
                 "cv_accuracy": self.cv_accuracy_, "joint_params": self.model_._saved_params(),
                 "joint_extra": joint_extra}
        tensors = {f"joint.{k}": v for k, v in joint_tensors.items()}
        tensors.update({f"probes.{k}": v for k, v in self.net_.probes.state_dict().items()})
        return extra, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        try:
            model = cls(**params)
        except TypeError as e:
            raise AnytaskError(f"saved {cls.__name__} has parameters this version does not know ({e})") from None
        joint = {k[len("joint."):]: v for k, v in tensors.items() if k.startswith("joint.")}
        model.model_ = MULTITASK.get(model.base)._from_state(extra["joint_params"], extra["joint_extra"], joint)
        model.tasks_, model.in_shape_ = list(extra["tasks"]), tuple(extra["in_shape"])
        model.classes_, model.choice_ = model.model_.classes_, dict(extra["choice"])
        model.cv_accuracy_ = extra["cv_accuracy"]
        probes = {}
        for t, n in enumerate(model.tasks_):
            if model.choice_[n] != "joint":
                w = tensors.get(f"probes.{t}.linear.weight")
                if w is None:
                    raise AnytaskError(f"saved {cls.__name__} lacks the probe of task {n!r}; the folder is incomplete")
                probes[str(t)] = _Probe(w.shape[1], len(model.classes_[n]))
                probes[str(t)].linear.load_state_dict({"weight": w, "bias": tensors[f"probes.{t}.linear.bias"]})
        model.net_ = _GuardedNet(model.model_.net_, probes).eval()
        return model

    def _card_fields(self) -> dict:
        return {**super()._card_fields(), "choice": ", ".join(f"`{n}`: {c}" for n, c in self.choice_.items())}
