"""Time-contrastive features, the visual objective behind Ag2Manip's agent-agnostic representation (Li et al. 2024,
https://arxiv.org/abs/2404.17521, card 08). Two objectives:

- ``"vip"`` (Ma et al. 2023, VIP, https://arxiv.org/abs/2210.00030): the embedding distance to a goal frame is a value,
  ``V(o; g) = -||phi(o) - phi(g)||``, trained by VIP's dual objective ``(1 - gamma) E[-V(o_0; g)] + log E exp(-(r +
  gamma V(o'; g) - V(o; g)))`` with ``r = -1`` per step, ``o_0`` an episode's first frame, ``g`` the frame that ends
  a successful episode, ``(o, o')`` consecutive frames of it. Needs videos: Transitions whose rows carry
  ``episode`` and ``step`` (``anytask.data.pushworld.push_videos``).
- ``"infonce"``: an observation near the next one and far from the batch's others (InfoNCE over negative squared
  distances, TCN-style); works on any Transitions, but its distances are only locally meaningful.

Trained on agent-masked frames (``anytask/Push-v0`` with ``obs="masked"``) the encoder sees only the object's state,
so its goal distance ``-||phi(o) - phi(g)||`` (``goal_reward``) is a reward that does not depend on the body doing
the pushing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.methods.control.base import ENCODERS, StateEncoder, adam, obs_tensor


@ENCODERS.register("time_contrastive", reference="Li et al. 2024 (Ag2Manip), https://arxiv.org/abs/2404.17521; "
                   "Ma et al. 2023 (VIP); Sermanet et al. 2018 (TCN)", saveable=True, input="transitions",
                   output="embeddings")
class TimeContrastive(StateEncoder):
    """Features where consecutive frames are close: ``goal_reward`` reads progress towards a goal frame."""

    def __init__(self, objective: str = "infonce", width: int = 64, steps: int = 2_000, batch_size: int = 128,
                 lr: float = 1e-3, temperature: float = 1.0, gamma: float = 0.98, n_transitions: int = 20_000,
                 seed: int = 0, progress: bool = False, checkpoint_dir: str | None = None,
                 checkpoint_every: int = 1_000):
        self.objective, self.gamma = objective, gamma
        self.width, self.steps, self.batch_size, self.lr, self.temperature = width, steps, batch_size, lr, temperature
        self.n_transitions, self.seed, self.progress = n_transitions, seed, progress
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, checkpoint_every

    def _build(self, data) -> None:
        self.scale_ = 1 / 255 if int(np.asarray(data.obs[:1000]).max()) > 1 else 1.0  # pixel frames to [0, 1]

    def _build_from_saved(self, extra) -> None:
        self.scale_ = float(extra.get("scale", 1.0))

    def _get_state(self):
        extra, tensors = super()._get_state()
        return {**extra, "scale": self.scale_}, tensors

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.torso_(x * self.scale_)

    def _check_params(self) -> None:
        super()._check_params()
        if self.objective not in ("vip", "infonce"):
            raise AnytaskError(f"objective={self.objective!r}: use 'vip' (needs videos) or 'infonce'")

    def _episodes(self, data) -> list[np.ndarray]:
        """Row indices of every successful episode in step order (VIP's goal is the frame that ends it)."""
        if getattr(data, "episode", None) is None or getattr(data, "step", None) is None:
            raise AnytaskError("objective='vip' needs videos whose rows carry episode and step (e.g. "
                               "anytask.data.pushworld.push_videos); use objective='infonce' for plain transitions")
        order = np.lexsort((data.step, data.episode))
        cuts = np.flatnonzero(np.diff(data.episode[order])) + 1
        eps = [e for e in np.split(order, cuts) if data.terminal[e[-1]]]
        if not eps:
            raise AnytaskError("objective='vip' needs at least one successful episode (a goal frame) in the videos")
        return eps

    def _train(self, data) -> None:
        obs, nxt = torch.as_tensor(data.obs), torch.as_tensor(data.next_obs)
        opt = adam(self.torso_.parameters(), lr=float(self.lr))
        gen = torch.Generator().manual_seed(int(self.seed))
        B, T = int(self.batch_size), float(self.temperature)
        if self.objective == "vip":
            eps = self._episodes(data)
            first = torch.as_tensor([int(e[0]) for e in eps])
            last = torch.as_tensor([int(e[-1]) for e in eps])
            lengths = torch.as_tensor([len(e) for e in eps])
            flat, offset = torch.as_tensor(np.concatenate(eps)), torch.cumsum(lengths, 0) - lengths
            phi = lambda rows, src: self.torso_(obs_tensor(src[rows]) * self.scale_)  # noqa: E731
            gamma = float(self.gamma)

            def vip_step(i: int) -> dict:
                k = torch.randint(len(eps), (B,), generator=gen)
                t = (torch.rand(B, generator=gen) * lengths[k]).long()
                rows = flat[offset[k] + t]
                g = phi(last[k], nxt)
                v0 = -torch.linalg.norm(phi(first[k], obs) - g, dim=1)
                v = -torch.linalg.norm(phi(rows, obs) - g, dim=1)
                v_next = -torch.linalg.norm(phi(rows, nxt) - g, dim=1)
                loss = (1 - gamma) * -v0.mean() + torch.logsumexp(-(-1.0 + gamma * v_next - v), 0) - np.log(B)
                opt.zero_grad()
                loss.backward()
                opt.step()
                return {"loss": float(loss.detach()), "v0": float(v0.mean().detach())}

            return self._run(data, vip_step, {"torso": self.torso_, "opt": opt}, int(self.steps), gen,
                             desc=f"VIP {data.env_id}")

        def step(i: int) -> dict:
            idx = torch.randint(len(obs), (B,), generator=gen)
            z = self.torso_(obs_tensor(obs[idx]) * self.scale_)
            z2 = self.torso_(obs_tensor(nxt[idx]) * self.scale_)
            logits = -torch.cdist(z, z2) ** 2 / T
            loss = nn.functional.cross_entropy(logits, torch.arange(B))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": float(loss.detach()), "acc": float((logits.argmax(1) == torch.arange(B)).float().mean())}

        self._run(data, step, {"torso": self.torso_, "opt": opt}, int(self.steps), gen,
                  desc=f"time-contrastive {data.env_id}")


def goal_reward(encoder: StateEncoder, frames, goal_frames) -> np.ndarray:
    """``-||phi(o) - phi(g)||`` for frames ``(N, H, W, C)`` and their goal frames (same shape): Ag2Manip's reward."""
    return -np.linalg.norm(encoder.embed(frames) - encoder.embed(goal_frames), axis=1)
