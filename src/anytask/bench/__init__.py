"""The benchmark: tasks x heads x shots-per-class x seeds, baseline always in the same run."""

from anytask.bench.runner import BASELINE, run_bench
from anytask.bench.tasks import Task, prepare_tasks

__all__ = ["BASELINE", "Task", "prepare_tasks", "run_bench"]
