"""TAME: task-agnostic continual learning with multiple experts.

Zhu, Majzoubi, Jain & Choromanska 2022, https://arxiv.org/abs/2210.03869 (card 16). One
expert (a small MLP over frozen features) per discovered task. A shift detector watches the
current expert's training loss; when a shift is confirmed, every expert is tried on the new
batches and the best is re-used if its loss lies within its own normal range, else a new
expert is created. Each expert keeps a reservoir buffer of its task; a selector trained on the
buffers routes test inputs. With ``task=`` given, routing is exact (the oracle upper bound).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch.nn.functional import cross_entropy

from anytask.core.io import Pretrained
from anytask.methods.continual.detector import ShiftDetector
from anytask.methods.continual.nets import GrowingMLP, Reservoir, count_nonzero, prune_by_magnitude
from anytask.core.errors import AnytaskError
from anytask.core.validation import check_features


class ExpertLearner(Pretrained, BaseEstimator):
    def __init__(self, *, hidden: int = 256, lr: float = 1e-3, window: int = 20, sensitivity: float = 3.0,
                 patience: int = 2, buffer_size: int = 200, selector_epochs: int = 30, prune: float = 0.0,
                 seed: int = 0) -> None:
        self.hidden = hidden
        self.lr = lr
        self.window = window
        self.sensitivity = sensitivity
        self.patience = patience
        self.buffer_size = buffer_size
        self.selector_epochs = selector_epochs
        self.prune = prune
        self.seed = seed

    # -- state --------------------------------------------------------------------------------
    def _init(self, dim: int) -> None:
        self.n_features_in_ = dim
        self.labels_: list = []
        self._label_index = {}
        self.experts_: list[GrowingMLP] = []
        self.optims_: list[torch.optim.Optimizer] = []
        self.buffers_: list[Reservoir] = []
        self.normal_: list[tuple[float, float] | None] = []
        self.expert_labels_: list[set[int]] = []
        self.task_ids_: dict = {}
        self.current_ = -1
        self.detector_ = ShiftDetector(window=self.window, sensitivity=self.sensitivity, patience=self.patience)
        self.pending_: list[tuple[np.ndarray, np.ndarray]] = []
        self.events_: list[dict] = []
        self.batches_ = 0
        self.selector_ = None

    def _new_expert(self) -> int:
        k = len(self.experts_)
        net = GrowingMLP(self.n_features_in_, len(self.labels_), self.hidden, seed=self.seed * 1000 + k)
        self.experts_.append(net)
        self.optims_.append(torch.optim.Adam(net.parameters(), lr=self.lr))
        self.buffers_.append(Reservoir(self.buffer_size, self.n_features_in_, seed=self.seed * 1000 + k))
        self.normal_.append(None)
        self.expert_labels_.append(set())
        return k

    def _encode(self, y) -> np.ndarray:
        y = np.asarray(y)
        for label in y.tolist():
            if label not in self._label_index:
                self._label_index[label] = len(self.labels_)
                self.labels_.append(label)
        for net in self.experts_:
            # far below every trained output: a batch with labels an expert never learned gets a loss
            # well outside its normal range, which is what the shift detector looks for
            net.grow(len(self.labels_), bias_offset=-5.0)
        return np.asarray([self._label_index[v] for v in y.tolist()], dtype=np.int64)

    # -- learning -----------------------------------------------------------------------------
    def _loss(self, k: int, X: np.ndarray, y: np.ndarray) -> float:
        with torch.no_grad():
            return float(cross_entropy(self.experts_[k](torch.from_numpy(X)), torch.from_numpy(y)))

    def _fit_loss(self, k: int, X: np.ndarray, y: np.ndarray) -> float:
        """How well expert k explains a batch, over its own labels only (inf if it never saw one of them):
        outputs added later for other tasks' labels must not make an old expert look worse."""
        known = sorted(self.expert_labels_[k])
        if not known or not set(y.tolist()) <= set(known):
            return float("inf")
        remap = torch.as_tensor(np.searchsorted(known, y))
        with torch.no_grad():
            logits = self.experts_[k](torch.from_numpy(X))[:, known]
            return float(cross_entropy(logits, remap))

    def _train(self, k: int, X: np.ndarray, y: np.ndarray) -> None:
        net, opt = self.experts_[k], self.optims_[k]
        first_seen = sorted(set(y.tolist()) - self.expert_labels_[k])
        if first_seen:  # the -5 offset marked "never learned"; learning starts from a neutral bias
            known = sorted(self.expert_labels_[k])
            with torch.no_grad():
                net.out.bias[first_seen] = net.out.bias[known].mean() if known else 0.0
        self.optims_[k] = opt = self._refresh(net, opt)
        loss = cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.buffers_[k].add(X, y)
        self.expert_labels_[k].update(y.tolist())
        self.selector_ = None

    def _refresh(self, net, opt):
        """A grown output layer means new parameters: rebuild the optimizer when they changed."""
        if {id(p) for g in opt.param_groups for p in g["params"]} != {id(p) for p in net.parameters()}:
            fresh = torch.optim.Adam(net.parameters(), lr=self.lr)
            for param in net.parameters():  # the hidden layer is unchanged: keep its Adam moments
                if param in opt.state:
                    fresh.state[param] = opt.state[param]
            return fresh
        return opt

    def partial_fit(self, X, y, *, task=None) -> "ExpertLearner":
        """Learn from one batch. ``task`` (any hashable) routes it exactly; None lets the learner infer."""
        X = check_features(X, n_features=getattr(self, "n_features_in_", None))
        if y is None or len(y) != len(X):
            raise AnytaskError(f"partial_fit needs one label per row: X has {len(X)} rows, y has "
                               f"{'no' if y is None else len(y)} labels")
        if not hasattr(self, "experts_"):
            self._init(X.shape[1])
        yi = self._encode(y)
        self.batches_ += 1
        if task is not None:
            if task not in self.task_ids_:
                self.task_ids_[task] = self._new_expert()
                self.events_.append({"batch": self.batches_, "event": "new", "expert": self.task_ids_[task]})
            self.current_ = self.task_ids_[task]
            self._train(self.current_, X, yi)
            return self
        if self.current_ < 0:
            self.current_ = self._new_expert()
            self.events_.append({"batch": self.batches_, "event": "new", "expert": self.current_})
        loss = self._loss(self.current_, X, yi)
        if self.detector_.update(loss):
            self.pending_.append((X, yi))
            self._switch()
            for Xp, yp in self.pending_:
                self._train(self.current_, Xp, yp)
            self.pending_ = []
        elif self.detector_.suspicious:
            self.pending_.append((X, yi))  # held back until the shift is confirmed or dismissed
        else:
            for Xp, yp in self.pending_:  # a dismissed spike: the batches belong to the current task
                self._train(self.current_, Xp, yp)
            self.pending_ = []
            self._train(self.current_, X, yi)
        return self

    def _switch(self) -> None:
        self.normal_[self.current_] = self.detector_.normal_range()
        X = np.concatenate([p[0] for p in self.pending_])
        y = np.concatenate([p[1] for p in self.pending_])
        losses = [self._fit_loss(k, X, y) for k in range(len(self.experts_))]
        best = int(np.argmin(losses))
        normal = self.normal_[best]
        if best != self.current_ and normal is not None and losses[best] <= normal[0] + self.sensitivity * normal[1]:
            self.current_, event = best, "reuse"
        else:
            self.current_, event = self._new_expert(), "new"
        self.events_.append({"batch": self.batches_ - len(self.pending_) + 1, "event": event, "expert": self.current_})
        self.detector_.reset()

    def finish(self) -> "ExpertLearner":
        """End of stream: train on batches still held back by the detector, prune, fit the selector."""
        for Xp, yp in getattr(self, "pending_", []):
            self._train(self.current_, Xp, yp)
        self.pending_ = []
        for net in getattr(self, "experts_", []):
            prune_by_magnitude(net, self.prune)
        if getattr(self, "experts_", None) and not self.task_ids_:  # task ids route exactly: no selector
            self._fit_selector()
        return self

    def _fit_selector(self) -> None:
        if len(self.experts_) < 2:
            self.selector_ = "single"
            return
        X = np.concatenate([b.X[: len(b)] for b in self.buffers_])
        t = np.concatenate([np.full(len(b), k) for k, b in enumerate(self.buffers_)])
        net = GrowingMLP(self.n_features_in_, len(self.experts_), self.hidden, seed=self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        Xt, tt = torch.from_numpy(X), torch.from_numpy(t)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(self.selector_epochs):
            for idx in torch.randperm(len(Xt), generator=gen).split(64):
                loss = cross_entropy(net(Xt[idx]), tt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        prune_by_magnitude(net, self.prune)
        self.selector_ = net

    # -- prediction ---------------------------------------------------------------------------
    def route(self, X) -> np.ndarray:
        if not getattr(self, "experts_", None):
            raise AnytaskError("the learner has seen no data; call partial_fit first")
        X = check_features(X, n_features=self.n_features_in_)
        if self.selector_ is None:
            self._fit_selector()
        if self.selector_ == "single":
            return np.zeros(len(X), dtype=int)
        with torch.no_grad():
            return self.selector_(torch.from_numpy(X)).argmax(1).numpy()

    def predict(self, X, *, task=None) -> np.ndarray:
        X = check_features(X, n_features=getattr(self, "n_features_in_", None))
        if task is not None:
            if task not in getattr(self, "task_ids_", {}):
                raise AnytaskError(f"unknown task {task!r}; tasks seen: {list(self.task_ids_)}")
            experts = np.full(len(X), self.task_ids_[task])
        else:
            experts = self.route(X)
        out = np.empty(len(X), dtype=int)
        with torch.no_grad():
            for k in np.unique(experts):
                rows = experts == k
                logits = self.experts_[k](torch.from_numpy(X[rows]))
                mask = torch.full((len(self.labels_),), float("-inf"))
                mask[list(self.expert_labels_[k])] = 0  # an expert only answers with labels it learned
                out[rows] = (logits[:, : len(self.labels_)] + mask).argmax(1).numpy()
        return np.asarray(self.labels_, dtype=object)[out]

    def n_parameters(self) -> int:
        selector = self.selector_ if isinstance(self.selector_, torch.nn.Module) else None
        return sum(count_nonzero(n) for n in self.experts_) + (count_nonzero(selector) if selector else 0)

    # -- persistence (anytask.core.io) ---------------------------------------------------------------
    def _get_state(self):
        if not getattr(self, "experts_", None):
            raise AnytaskError("nothing to save: the learner has seen no data")
        tensors = {}
        for i, (Xp, yp) in enumerate(self.pending_):  # batches held back by the detector are kept too
            tensors[f"pending{i}.X"], tensors[f"pending{i}.y"] = torch.from_numpy(Xp), torch.from_numpy(yp)
        for k, net in enumerate(self.experts_):
            tensors.update({f"expert{k}.{n}": p for n, p in net.state_dict().items()})
            tensors[f"buffer{k}.X"] = torch.from_numpy(self.buffers_[k].X[: len(self.buffers_[k])])
            tensors[f"buffer{k}.y"] = torch.from_numpy(self.buffers_[k].y[: len(self.buffers_[k])])
        if isinstance(self.selector_, torch.nn.Module):
            tensors.update({f"selector.{n}": p for n, p in self.selector_.state_dict().items()})
        labels = [v.item() if hasattr(v, "item") else v for v in self.labels_]
        tasks = []
        for t, k in self.task_ids_.items():  # keep each id's type: task=0 must still route after a load
            t = t.item() if hasattr(t, "item") else t
            if not isinstance(t, (str, int, float, bool)):
                raise AnytaskError(f"cannot save task id {t!r} ({type(t).__name__}): task ids must be strings or "
                                   "numbers to be saved")
            tasks.append([t, k])
        extra = {"n_features_in": self.n_features_in_, "labels": labels,
                 "expert_labels": [sorted(s) for s in self.expert_labels_], "normal": self.normal_,
                 "tasks": tasks, "events": self.events_,
                 "current": self.current_, "batches": self.batches_,
                 "buffer_seen": [b.seen for b in self.buffers_], "history": list(self.detector_.history),
                 "suspicious": self.detector_.suspicious}
        return extra, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        learner = cls(**params)
        learner._init(int(extra["n_features_in"]))
        learner.labels_ = list(extra["labels"])
        learner._label_index = {v: i for i, v in enumerate(learner.labels_)}
        for k, labels in enumerate(extra["expert_labels"]):
            learner._new_expert()
            learner.experts_[k].grow(len(learner.labels_))
            learner.experts_[k].load_state_dict({n.split(".", 1)[1]: p for n, p in tensors.items()
                                                 if n.startswith(f"expert{k}.")})
            learner.optims_[k] = torch.optim.Adam(learner.experts_[k].parameters(), lr=learner.lr)
            X, y = tensors[f"buffer{k}.X"].numpy(), tensors[f"buffer{k}.y"].numpy()
            buf = learner.buffers_[k]
            buf.X[: len(X)], buf.y[: len(y)], buf.seen = X, y, int(extra["buffer_seen"][k])
            learner.expert_labels_[k] = set(labels)
        learner.normal_ = [tuple(n) if n else None for n in extra["normal"]]
        learner.task_ids_ = {t: k for t, k in extra["tasks"]}
        learner.events_, learner.current_, learner.batches_ = extra["events"], extra["current"], extra["batches"]
        learner.detector_.history.extend(extra["history"])
        learner.detector_.suspicious = int(extra.get("suspicious", 0))
        learner.pending_ = [(tensors[f"pending{i}.X"].numpy(), tensors[f"pending{i}.y"].numpy())
                            for i in range(sum(n.endswith(".X") and n.startswith("pending") for n in tensors))]
        if any(n.startswith("selector.") for n in tensors):
            net = GrowingMLP(learner.n_features_in_, len(learner.experts_), learner.hidden)
            net.load_state_dict({n[9:]: p for n, p in tensors.items() if n.startswith("selector.")})
            learner.selector_ = net
        return learner
