"""Control: representations trained once on an environment's offline data and reused frozen by value-based
learners (Proto-Value Networks, card 38), and recurrent navigation policies with a task-conditioned codebook
bottleneck (card 33), and manipulation policies on the project's push world (Ag2Manip, card 08; RL-100, card 15),
over Gymnasium's API, MinAtar's games and the project's ObjectNav and Push. See ``base.py``."""

from anytask.methods.control import (ag2manip, codebook, pvn, qlearning, random_features,  # noqa: F401
                                     reconstruction, rl100, time_contrastive)
from anytask.methods.control.base import ENCODERS, LEARNERS, StateEncoder, Torso
from anytask.methods.control.codebook import POLICIES
from anytask.methods.control.rl100 import MANIPULATION

__all__ = ["ENCODERS", "LEARNERS", "MANIPULATION", "POLICIES", "StateEncoder", "Torso"]
