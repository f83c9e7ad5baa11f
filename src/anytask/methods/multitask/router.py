"""A task-token router over experts, in the spirit of UnifiedMLLM (Li et al. 2024, https://arxiv.org/abs/2408.02503).

UnifiedMLLM has its language model emit a *task token* that a router uses to send the request to a task's
expert; a new task costs a new token and a new expert, not a retraining. Here the mechanism runs over frozen
features (card 26: no MLLM, a small router stands in):

* each task owns a learned token ``tau_t`` (``token_dim``); the router scores every expert from ``[x; tau_t]``
  (one score unit per expert), a softmax over the experts the task can see mixes their outputs, a tower reads it;
* ``add_task(name, X, y)`` appends a token, ``new_experts`` experts, their score units and a tower, and trains only
  those; every older part is frozen and each task only ever sees the experts that existed when it was trained,
  so the old tasks' predictions stay bit-identical (tested);
* ``predict_task(X)`` plays the planner when a request comes without its task: the task whose training inputs'
  mean direction is closest (cosine), and adding a task adds its centroid.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.methods.multitask.base import MULTITASK, MultiTaskModel, task_key, check_tasks, expert, mlp


@MULTITASK.register("router", reference="Li et al. 2024, UnifiedMLLM: task tokens route requests to experts, "
                    "https://arxiv.org/abs/2408.02503", saveable=True)
class TaskTokenRouter(MultiTaskModel):
    """Learned task tokens condition a router over experts; tasks can be added later without touching old ones.
    ``experts``: experts made at ``fit``; ``new_experts``: added with each ``add_task``; ``token_dim``."""

    def __init__(self, *, experts: int = 4, new_experts: int = 1, token_dim: int = 16, **kw):
        super().__init__(**kw)
        self.experts, self.new_experts, self.token_dim = experts, new_experts, token_dim

    def _before_build(self, n_tasks: int) -> None:
        self.expert_counts_ = [self.experts] * n_tasks

    def _after_fit(self, Xs: list[np.ndarray]) -> None:
        self.centroids_ = np.stack([_centroid(X) for X in Xs])

    def _build(self, in_shape, n_classes):
        return _RouterBody(in_shape[0], self, n_classes, self.expert_counts_)

    def add_task(self, name: str, X, y) -> "TaskTokenRouter":
        """Learn one more task: a new token, ``new_experts`` experts and a tower, trained alone; nothing the
        earlier tasks use changes."""
        self._check_fitted()
        names, Xs, ys, shape = check_tasks({name: (X, y)})
        if shape != self.in_shape_:
            raise AnytaskError(f"task {name!r} has features of shape {shape}, this group was fitted on "
                               f"{self.in_shape_}; embed it with the same backbone")
        if any(task_key(n) == task_key(name) for n in self.tasks_):
            raise AnytaskError(f"task {name!r} is already in this group; give the new task another name")
        classes, idx = np.unique(ys[0], return_inverse=True)
        net = copy.deepcopy(self.net_)  # grown and trained aside, swapped in at the end: a failure changes nothing
        for p in net.parameters():
            p.requires_grad_(False)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed + len(self.tasks_))
            new = net.body.grow(len(classes), self.new_experts)
            width = self.in_shape_[-1] if self.skip == "last" else int(np.prod(self.in_shape_))
            if net.skips is not None:
                skip = nn.Linear(width, len(classes))
                net.skips.append(skip)
                new += list(skip.parameters())
            self._train(net, [len(self.tasks_)], Xs, [idx], new)
        for p in net.parameters():
            p.requires_grad_(True)
        self.net_ = net
        self.tasks_.append(name)
        self.classes_[name] = classes
        self.expert_counts_.append(len(net.body.experts))
        self.centroids_ = np.vstack([self.centroids_, _centroid(Xs[0])[None]])
        return self

    def predict_task(self, X) -> np.ndarray:
        """The task each row most likely belongs to (nearest task centroid by cosine): the planner's guess."""
        x = self._features(X).numpy().reshape(len(X), -1)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.asarray(self.tasks_, dtype=object)[np.argmax(x @ self.centroids_.T, axis=1)]

    def _extra_state(self) -> dict:
        return {"expert_counts": list(self.expert_counts_)}

    def _restore_extra(self, extra: dict) -> None:
        self.expert_counts_ = list(extra["expert_counts"])

    def _get_state(self):
        extra, tensors = super()._get_state()
        tensors["centroids"] = torch.from_numpy(np.ascontiguousarray(self.centroids_, dtype=np.float32))
        return extra, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        tensors = dict(tensors)
        centroids = tensors.pop("centroids").numpy()
        model = super()._from_state(params, extra, tensors)
        model.centroids_ = centroids
        return model


def _centroid(X: np.ndarray) -> np.ndarray:
    c = X.reshape(len(X), -1).mean(0)
    return (c / max(np.linalg.norm(c), 1e-12)).astype(np.float32)


class _RouterBody(nn.Module):
    def __init__(self, D: int, cfg: TaskTokenRouter, n_classes: list[int], counts: list[int]):
        super().__init__()
        self.D, self.k, self.H, self.dropout = D, cfg.token_dim, cfg.hidden, cfg.dropout
        self.counts = list(counts)
        n_experts = max(counts) if counts else cfg.experts
        self.tokens = nn.ParameterList(nn.Parameter(0.1 * torch.randn(self.k)) for _ in n_classes)
        self.experts = nn.ModuleList(expert(D, self.H, self.dropout) for _ in range(n_experts))
        self.scores = nn.ModuleList(nn.Linear(D + self.k, 1) for _ in range(n_experts))
        self.towers = nn.ModuleList(mlp(self.H, c, dropout=self.dropout) for c in n_classes)

    def grow(self, n_classes: int, n_new: int) -> list[nn.Parameter]:
        """Append a token, ``n_new`` experts with their score units and a tower; returns their parameters."""
        token = nn.Parameter(0.1 * torch.randn(self.k))
        self.tokens.append(token)
        experts = [expert(self.D, self.H, self.dropout) for _ in range(n_new)]
        scores = [nn.Linear(self.D + self.k, 1) for _ in range(n_new)]
        tower = mlp(self.H, n_classes, dropout=self.dropout)
        self.experts.extend(experts)
        self.scores.extend(scores)
        self.towers.append(tower)
        self.counts.append(len(self.experts))
        return [token] + [p for m in experts + scores + [tower] for p in m.parameters()]

    def gate(self, x: Tensor, t: int) -> Tensor:
        """Task t's weights over the experts it can see (B, n_t)."""
        n = self.counts[t]
        xt = torch.cat([x, self.tokens[t].expand(len(x), -1)], -1)          # (B, D+k)
        return torch.softmax(torch.cat([self.scores[i](xt) for i in range(n)], -1), -1)

    def forward(self, x: Tensor, t: int) -> Tensor:
        g = self.gate(x, t)
        e = torch.stack([self.experts[i](x) for i in range(self.counts[t])], 1)   # (B, n_t, H)
        return self.towers[t]((g.unsqueeze(-1) * e).sum(1))
