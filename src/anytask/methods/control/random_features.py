"""Random features: the torso at its seeded initialisation, never trained (the PVN paper's random-encoder
control, card 38). A linear Q-function on it measures what the architecture alone gives."""

from __future__ import annotations

from anytask.methods.control.base import ENCODERS, StateEncoder


@ENCODERS.register("random", reference="Farebrother et al. 2023 (random-encoder control), "
                   "https://arxiv.org/abs/2304.12567", saveable=True, input="transitions", output="embeddings")
class RandomFeatures(StateEncoder):
    """The untrained torso (seeded): the baseline every learned representation must beat."""

    def __init__(self, width: int = 256, n_transitions: int = 1_000, seed: int = 0, progress: bool = False):
        self.width, self.n_transitions, self.seed, self.progress = width, n_transitions, seed, progress

    def _train(self, data) -> None:
        self.history_ = [{"step": 0}]
