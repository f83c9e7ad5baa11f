"""Control: representations trained once on an environment's offline data and reused frozen by value-based
learners (Proto-Value Networks, card 38), over Gymnasium's API and MinAtar's games. See ``base.py``."""

from anytask.methods.control import pvn, qlearning, random_features, reconstruction  # noqa: F401  (registration)
from anytask.methods.control.base import ENCODERS, LEARNERS, StateEncoder, Torso

__all__ = ["ENCODERS", "LEARNERS", "StateEncoder", "Torso"]
