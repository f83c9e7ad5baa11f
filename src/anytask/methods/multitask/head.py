"""One task of a multi-task group as an ordinary head (``HEADS["multitask"]``), so everything that serves heads
serves it: ``TextClassifier``, ``anytask bench --heads multitask``, and the service, which stores each task of a
group trained together (``POST /v1/groups``) as one of these.

``MultiTaskHead(method=...).fit(X, y)`` alone trains a one-task group of that method (a mixture-of-experts head,
say); ``MultiTaskHead.from_group(model, task, group=...)`` wraps one task of a fitted ``MultiTaskModel``. The
saved folder holds the whole group's weights (each member's copy), so a member loads on its own.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.heads import HEADS, BaseHead
from anytask.methods.multitask.base import MULTITASK, MultiTaskModel


@HEADS.register("multitask", reference="one task of a group from anytask.methods.multitask (MMoE, PLE, DTRN, "
                "TaskExpert, the task-token router); see docs/methods/multitask.md", saveable=True,
                summary="one task of a multi-task group (alone: a one-task group of `method`)")
class MultiTaskHead(BaseHead):
    """A head backed by a multi-task model: ``method`` names it (``MULTITASK``), ``group`` records which group it
    was trained with (``None`` when fitted alone), ``steps`` and ``seed`` are passed to a fit alone."""

    def __init__(self, *, method: str = "mmoe", group: str | None = None, steps: int = 300, seed: int = 0) -> None:
        self.method, self.group, self.steps, self.seed = method, group, steps, seed

    def _fit(self, X: Tensor, y: Tensor) -> None:
        if self.group is not None:
            raise AnytaskError(f"this head belongs to group {self.group!r} and was trained with its tasks; fitting it "
                               "alone would drop them — train the group again, or use group=None")
        self.model_ = MULTITASK.get(self.method)(steps=self.steps, seed=self.seed).fit({"task": (X.numpy(),
                                                                                                  y.numpy())})
        self.task_ = "task"

    @classmethod
    def from_group(cls, model: MultiTaskModel, task: str, *, group: str) -> "MultiTaskHead":
        """Task ``task`` of the fitted group ``model`` as a fitted head (labels as the group has them)."""
        model._task_index(task)
        if len(model.in_shape_) != 1:
            raise AnytaskError("a group member head reads (N, D) embeddings; this group was fitted on views "
                               f"{model.in_shape_}")
        head = cls(method=MULTITASK.name_of(model), group=group, steps=model.steps, seed=model.seed)
        head.model_, head.task_ = model, task
        head.classes_ = np.asarray(model.classes_[task])
        head.n_features_in_ = int(model.in_shape_[0])
        return head

    def _logits(self, X: Tensor) -> Tensor:
        return torch.from_numpy(self.model_.decision_function(X.numpy(), task=self.task_))

    def _get_state(self):
        extra, tensors = super()._get_state()
        group_extra, group_tensors = self.model_._get_state()
        extra.update(task=self.task_, group_params=self.model_._saved_params(), group_extra=group_extra)
        return extra, {**tensors, **{f"group.{k}": v for k, v in group_tensors.items()}}

    def _tensors(self) -> dict[str, Tensor]:
        return {}

    def _load_extra(self, extra: dict, tensors: dict[str, Tensor]) -> None:
        group = {k[len("group."):]: v for k, v in tensors.items() if k.startswith("group.")}
        self.model_ = MULTITASK.get(self.method)._from_state(extra["group_params"], extra["group_extra"], group)
        self.task_ = extra["task"]

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass
