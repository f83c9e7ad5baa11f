"""Control: representations trained once on an environment's offline data and reused frozen by value-based
learners (Proto-Value Networks, card 38), and recurrent navigation policies with a task-conditioned codebook
bottleneck (card 33), over Gymnasium's API, MinAtar's games and the project's ObjectNav. See ``base.py``."""

from anytask.methods.control import codebook, pvn, qlearning, random_features, reconstruction  # noqa: F401
from anytask.methods.control.base import ENCODERS, LEARNERS, StateEncoder, Torso
from anytask.methods.control.codebook import POLICIES

__all__ = ["ENCODERS", "LEARNERS", "POLICIES", "StateEncoder", "Torso"]
