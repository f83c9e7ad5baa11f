"""The benchmark: tasks x heads x shots-per-class x seeds, baseline always in the same run."""

from anytask.experiments.runner import BASELINE, run_bench
from anytask.experiments.tasks import Task, prepare_tasks

__all__ = ["BASELINE", "Task", "prepare_tasks", "run_bench"]
