"""In-context learning: a reasoning module pre-trained on synthetic tasks (TART, BraInCoRL)."""

from anytask.methods.icl.model import ICLConfig, Reasoner, pretrain, sample_tasks
from anytask.methods.icl.regressor import REGRESSORS, ICLRegressor
from anytask.methods.icl import head  # noqa: F401  (registers the icl head)

__all__ = ["ICLConfig", "ICLRegressor", "REGRESSORS", "Reasoner", "pretrain", "sample_tasks"]
