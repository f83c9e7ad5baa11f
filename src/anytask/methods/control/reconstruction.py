"""Reconstruction features: the torso trained as an autoencoder of the observation (the PVN paper's
reconstruction-trained control, card 38; Bellemare et al.'s auxiliary-task comparisons). Binary planes are
reconstructed with per-pixel BCE, vector states with MSE, from the ``width`` features through one linear layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from anytask.methods.control.base import ENCODERS, StateEncoder, adam, adam_lr, obs_tensor


@ENCODERS.register("reconstruction", reference="Farebrother et al. 2023 (reconstruction control), "
                   "https://arxiv.org/abs/2304.12567", saveable=True, input="transitions", output="embeddings")
class Reconstruction(StateEncoder):
    """An autoencoder's features: keep what rebuilds the frame, with no notion of time or control."""

    def __init__(self, width: int = 256, steps: int = 20_000, batch_size: int = 256, lr: float | None = None,
                 n_transitions: int = 200_000, seed: int = 0, progress: bool = False,
                 checkpoint_dir: str | None = None, checkpoint_every: int = 5_000):
        self.width, self.steps, self.batch_size, self.lr = width, steps, batch_size, lr
        self.n_transitions, self.seed, self.progress = n_transitions, seed, progress
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, checkpoint_every

    def _build(self, data) -> None:
        self.decoder_ = nn.Linear(int(self.width), int(np.prod(self.obs_shape_)))

    def _build_from_saved(self, extra) -> None:
        self._build(None)

    def _modules(self) -> dict[str, nn.Module]:
        return {"decoder": self.decoder_}

    def _train(self, data) -> None:
        obs = torch.as_tensor(data.obs)
        binary = data.obs.dtype == np.uint8 and int(data.obs.max()) <= 1
        model = nn.ModuleDict({"torso": self.torso_, "decoder": self.decoder_})
        opt = adam(model.parameters(), lr=self.lr or adam_lr(int(self.batch_size)))
        gen = torch.Generator().manual_seed(int(self.seed))
        B = int(self.batch_size)

        def step(i: int) -> dict:
            x = obs_tensor(obs[torch.randint(len(obs), (B,), generator=gen)])
            out = self.decoder_(self.torso_(x)).view(B, *data.obs_shape)
            want = x.permute(0, 2, 3, 1) if x.dim() == 4 else x
            loss = (nn.functional.binary_cross_entropy_with_logits(out, want) if binary
                    else nn.functional.mse_loss(out, want))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": float(loss.detach())}

        self._run(data, step, {"model": model, "opt": opt}, int(self.steps), gen, desc=f"reconstruction {data.env_id}")
