"""Continual learning on frozen features without task labels: TAME's experts and baselines.

Streams come from :mod:`anytask.data.streams`; the stream runner is :mod:`anytask.experiments.stream`."""

from anytask.methods.continual.base import LEARNERS, make_learner
from anytask.methods.continual.baselines import EWC, FineTune, Replay
from anytask.methods.continual.detector import ShiftDetector
from anytask.methods.continual.experts import ExpertLearner

__all__ = ["EWC", "ExpertLearner", "FineTune", "LEARNERS", "Replay", "ShiftDetector", "make_learner"]
