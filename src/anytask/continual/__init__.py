"""Continual learning on frozen features without task labels: TAME's experts and baselines."""

from anytask.continual.baselines import EWC, FineTune, Replay
from anytask.continual.detector import ShiftDetector
from anytask.continual.experts import ExpertLearner
from anytask.continual.run import METHODS, run_stream
from anytask.continual.streams import make_stream

__all__ = ["EWC", "ExpertLearner", "FineTune", "METHODS", "Replay", "ShiftDetector", "make_stream", "run_stream"]
