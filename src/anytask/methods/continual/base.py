"""The continual family's registry: learners that take a stream of batches through ``partial_fit``.

Each entry is a factory ``(n_tasks, seed, buffer_size, **params) -> learner``; ``task_ids=True``
marks learners that are told which task each batch (and each test set) comes from.
"""

from __future__ import annotations

from anytask.core.registry import Registry
from anytask.methods.continual.baselines import EWC, FineTune, Replay
from anytask.methods.continual.experts import ExpertLearner

LEARNERS: Registry = Registry("continual learner", family="continual")


@LEARNERS.register("tame", reference="TAME, Zhu et al. 2022, https://arxiv.org/abs/2210.03869", input="stream",
                   output="classes", saveable=True,
                   summary="task-agnostic experts: a shift detector opens a new expert, a router picks one")
def tame(*, n_tasks: int, seed: int, buffer_size: int = 200, **params) -> ExpertLearner:
    return ExpertLearner(buffer_size=buffer_size, seed=seed, **params)


@LEARNERS.register("oracle", reference="TAME's upper bound: told the task of every batch", input="stream",
                   output="classes", saveable=True, task_ids=True,
                   summary="one expert per known task (task ids given at training and test)")
def oracle(*, n_tasks: int, seed: int, buffer_size: int = 200, **params) -> ExpertLearner:
    return ExpertLearner(buffer_size=buffer_size, seed=seed, **params)


@LEARNERS.register("finetune", reference="naive sequential fine-tuning (the forgetting baseline)", input="stream",
                   output="classes", summary="one network trained on each batch in turn")
def finetune(*, n_tasks: int, seed: int, buffer_size: int = 200, **params) -> FineTune:
    return FineTune(seed=seed)


@LEARNERS.register("replay", reference="experience replay, Rolnick et al. 2019, https://arxiv.org/abs/1811.11682",
                   input="stream", output="classes",
                   summary="a reservoir of past examples (as much memory as TAME's buffers) mixed into each batch")
def replay(*, n_tasks: int, seed: int, buffer_size: int = 200, **params) -> Replay:
    return Replay(memory=buffer_size * n_tasks, seed=seed)


@LEARNERS.register("ewc", reference="EWC, Kirkpatrick et al. 2017, https://arxiv.org/abs/1612.00796",
                   input="stream", output="classes", task_ids=True,
                   summary="elastic weight consolidation: a Fisher-weighted pull toward earlier tasks' weights")
def ewc(*, n_tasks: int, seed: int, buffer_size: int = 200, **params) -> EWC:
    return EWC(seed=seed)


def make_learner(method: str, *, n_tasks: int, seed: int, buffer_size: int = 200, **params):
    """A new learner by registry name (``LEARNERS.names()``)."""
    return LEARNERS.get(method)(n_tasks=n_tasks, seed=seed, buffer_size=buffer_size, **params)
