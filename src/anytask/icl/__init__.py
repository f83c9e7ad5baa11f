"""In-context learning: a reasoning module pre-trained on synthetic tasks (TART, BraInCoRL)."""

from anytask.icl.model import ICLConfig, Reasoner, pretrain, sample_tasks

__all__ = ["ICLConfig", "Reasoner", "pretrain", "sample_tasks"]
