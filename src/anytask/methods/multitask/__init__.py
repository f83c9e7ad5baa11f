"""Multi-task learning on one frozen feature space: several labelled tasks trained together (``MULTITASK``:
the baselines independent / shared-bottom / MMoE / PLE, DTRN, TaskExpert, the task-token router, and
``guarded``, which keeps a joint model only for the tasks where cross-validation says it helps) and how to
spend a budget of source-task samples for a target task (``ALLOCATIONS``: uniform, nu2, nu1 by LASSO).
One file per method, one import line here."""

from anytask.methods.multitask.base import MULTITASK, MultiTaskModel
from anytask.methods.multitask import baselines  # noqa: E402,F401
from anytask.methods.multitask import dtrn  # noqa: E402,F401
from anytask.methods.multitask import taskexpert  # noqa: E402,F401
from anytask.methods.multitask import router  # noqa: E402,F401
from anytask.methods.multitask import guarded  # noqa: E402,F401
from anytask.methods.multitask import head  # noqa: E402,F401
from anytask.methods.multitask.amtrl import ALLOCATIONS, allocate, relevance  # noqa: E402

__all__ = ["ALLOCATIONS", "MULTITASK", "MultiTaskModel", "allocate", "relevance"]
