"""Proto-Value Networks: auxiliary tasks from the successor measure as the representation-learning method
(Farebrother, Greaves, Agarwal, Le Lan, Goroshin, Castro, Bellemare, ICLR 2023, https://arxiv.org/abs/2304.12567;
official code google-research/pvn).

Task ``i`` predicts ``psi_i(s, a) = E[sum_t gamma^t 1[s_t in S_i] | s_0 = s, a_0 = a]`` under the uniform random
policy, learned off-policy from offline transitions. The sets ``S_i`` come from random binary indicators:

- ``"rnd"`` (the paper's default): ``ceil(T / 10)`` frozen random conv nets emit 10 scalars each; task ``i``
  fires when ``f_i(s) + b_i > 0``, with the bias ``b_i`` trained by quantile regression so that a share ``p`` of
  states fire (loss ``mean(o ((1 - p) - 1[o < 0]))``, ``o = f_i(s) + b_i``), started at the data's empirical
  quantile; during the QR warm-up the TD loss is masked.
- ``"hash"``: multiply-shift hashing of the uint8 frame, ``((a_0 + sum_j a_j x_j) mod P) mod m`` with
  ``P = 2^13 - 1`` and ``m = round(1 / p)``; the task fires when the hash is 0.

The learning rule (the card's pitfalls): the cumulant is the indicator of the *current* state ``s``; the target
averages the next state's values over actions (the uniform policy's successor measure, not a max);
``y = 1[s in S_i] + (1 - terminal) gamma mean_a' psi_bar_i(s', a')``; loss ``1/2 (y - psi_i(s, a))^2`` averaged
over batch and tasks; the target network is an EMA, ``target <- 0.01 online + 0.99 target`` every step; Adam with
``lr = 6.25e-5 (batch / 32)^(1/4)`` and ``eps = 1.5e-4``. Features are the torso's ``width`` ReLU units, one
linear head per task on top (``T x |A|`` outputs), discarded after training: a linear Q-function on the frozen
features (``LEARNERS.get("linear_q")``) is the evaluation.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.methods.control.base import (
    ENCODERS, StateEncoder, adam, adam_lr, check_obs, ema_update, obs_tensor,
)

HASH_PRIME = 2 ** 13 - 1


def dsm_targets(cumulant: torch.Tensor, next_psi: torch.Tensor, terminal: torch.Tensor, gamma: float):
    """``y_i = c_i(s) + (1 - terminal) gamma mean_a' next_psi_i(s', a')``; ``cumulant (B, T)``,
    ``next_psi (B, T, A)`` from the target network, ``terminal (B,)``."""
    return cumulant + (1 - terminal.float())[:, None] * gamma * next_psi.mean(-1)


def dsm_loss(psi: torch.Tensor, actions: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 (y - psi(s, a_taken))^2`` averaged over the batch and the tasks; ``psi (B, T, A)``."""
    taken = psi.gather(2, actions.view(-1, 1, 1).expand(-1, psi.shape[1], 1)).squeeze(2)
    return 0.5 * (y.detach() - taken).pow(2).mean()


def quantile_loss(o: torch.Tensor, p: float) -> torch.Tensor:
    """Quantile regression of the bias so that ``P(o > 0) = p``: ``mean(o ((1 - p) - 1[o < 0]))``."""
    return (o * ((1 - p) - (o < 0).float())).mean()


class RandomIndicators(nn.Module):
    """``T`` random-network indicators with QR-calibrated biases. The frozen nets' outputs are standardised over
    the data once (``fit_scale``) so one bias learning rate fits every task."""

    def __init__(self, obs_shape: tuple[int, ...], n_tasks: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed) + 7919)
        n_nets = math.ceil(n_tasks / 10)
        nets = []
        for _ in range(n_nets):
            if len(obs_shape) == 3:
                h, w, c = obs_shape
                net = nn.Sequential(nn.Conv2d(c, 16, 3), nn.ReLU(), nn.Flatten(),
                                    nn.Linear(16 * (h - 2) * (w - 2), 10))
            else:
                net = nn.Sequential(nn.Linear(obs_shape[0], 64), nn.ReLU(), nn.Linear(64, 10))
            for prm in net.parameters():
                prm.data = (torch.rand(prm.shape, generator=g) * 2 - 1) * (1 / math.sqrt(max(1, prm[0].numel())))
                prm.requires_grad_(False)
            nets.append(net)
        self.nets = nn.ModuleList(nets)
        self.n_tasks = n_tasks
        self.bias = nn.Parameter(torch.zeros(n_tasks))
        self.register_buffer("loc", torch.zeros(n_tasks))
        self.register_buffer("scale", torch.ones(n_tasks))

    @torch.no_grad()
    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised pre-threshold outputs ``(B, T)`` (before the bias)."""
        f = torch.cat([net(x) for net in self.nets], 1)[:, :self.n_tasks]
        return (f - self.loc) / self.scale

    @torch.no_grad()
    def fit_scale(self, f: torch.Tensor) -> None:
        self.loc.copy_(f.mean(0))
        self.scale.copy_(f.std(0).clamp_min(1e-6))


def hash_indicators(obs_flat: torch.Tensor, a: torch.Tensor, a0: torch.Tensor, m: int) -> torch.Tensor:
    """Multiply-shift hashes of integer frames ``(B, J)`` for ``T`` hash functions (``a (J, T)``, ``a0 (T,)``):
    1 where ``((a0 + sum_j a_j x_j) mod P) mod m == 0``."""
    h = torch.remainder(a0 + obs_flat.long() @ a, HASH_PRIME)
    return (torch.remainder(h, m) == 0).float()


@ENCODERS.register("pvn", reference="Farebrother et al. 2023, https://arxiv.org/abs/2304.12567", saveable=True,
                   input="transitions", output="embeddings")
class PVN(StateEncoder):
    """Proto-value network: successor-measure auxiliary tasks train the features a linear Q-function uses."""

    def __init__(self, n_tasks: int = 32, width: int = 256, indicator: str = "rnd", p: float = 0.01,
                 steps: int = 20_000, batch_size: int = 256, lr: float | None = None, gamma: float = 0.99,
                 tau: float = 0.01, warmup: int | None = None, qr_lr: float = 1e-2, n_transitions: int = 200_000,
                 seed: int = 0, progress: bool = False, checkpoint_dir: str | None = None,
                 checkpoint_every: int = 5_000):
        self.n_tasks, self.width, self.indicator, self.p = n_tasks, width, indicator, p
        self.steps, self.batch_size, self.lr, self.gamma, self.tau = steps, batch_size, lr, gamma, tau
        self.warmup, self.qr_lr, self.n_transitions, self.seed = warmup, qr_lr, n_transitions, seed
        self.progress, self.checkpoint_dir, self.checkpoint_every = progress, checkpoint_dir, checkpoint_every

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.n_tasks, (int, np.integer)) or self.n_tasks < 1:
            raise AnytaskError(f"n_tasks={self.n_tasks!r}: must be a positive integer")
        if self.indicator not in ("rnd", "hash"):
            raise AnytaskError(f"indicator={self.indicator!r}: use 'rnd' (random networks, QR biases) or 'hash'")
        if not 0 < self.p < 0.5:
            raise AnytaskError(f"p={self.p!r}: the share of states each indicator fires on must lie in (0, 0.5)")
        if not 0 <= self.gamma < 1 or not 0 < self.tau <= 1:
            raise AnytaskError(f"gamma={self.gamma} must lie in [0, 1) and tau={self.tau} in (0, 1]")

    def _build(self, data) -> None:
        T, A = int(self.n_tasks), int(self.n_actions_)
        self.head_ = nn.Linear(int(self.width), T * A)
        if self.indicator == "rnd":
            self.indicators_ = RandomIndicators(self.obs_shape_, T, int(self.seed))
        else:
            g = torch.Generator().manual_seed(int(self.seed) + 7919)
            J = int(np.prod(self.obs_shape_))
            self.hash_a_ = torch.randint(1, HASH_PRIME, (J, T), generator=g)
            self.hash_a0_ = torch.randint(0, HASH_PRIME, (T,), generator=g)

    def _cumulants(self, obs_u8: np.ndarray) -> torch.Tensor:
        """Pre-threshold outputs (``rnd``, standardised) or firings (``hash``) for every observation, ``(N, T)``."""
        out = []
        for i in range(0, len(obs_u8), 8192):
            chunk = obs_u8[i:i + 8192]
            if self.indicator == "rnd":
                out.append(self.indicators_.raw(obs_tensor(chunk)))
            else:
                flat = torch.as_tensor(np.asarray(chunk).reshape(len(chunk), -1))
                out.append(hash_indicators(flat, self.hash_a_, self.hash_a0_, round(1 / self.p)))
        return torch.cat(out)

    def _train(self, data) -> None:
        T, A, B = int(self.n_tasks), int(self.n_actions_), int(self.batch_size)
        obs, nxt = torch.as_tensor(data.obs), torch.as_tensor(data.next_obs)
        act, term = torch.as_tensor(data.action), torch.as_tensor(data.terminal)
        F = self._cumulants(data.obs)
        if self.indicator == "rnd":  # F is raw here (loc 0, scale 1): standardise it once over the data
            ind = self.indicators_
            ind.fit_scale(F)
            F = (F - ind.loc) / ind.scale
            with torch.no_grad():  # QR's warm start: the data's (1 - p) quantile; QR keeps it calibrated after
                ind.bias.copy_(-torch.quantile(F[torch.randperm(len(F))[:100_000]], 1 - float(self.p), dim=0))
        online = nn.ModuleDict({"torso": self.torso_, "head": self.head_})
        target = copy.deepcopy(online)
        for prm in target.parameters():
            prm.requires_grad_(False)
        opt = adam(online.parameters(), lr=self.lr or adam_lr(B))
        state = {"online": online, "target": target, "opt": opt}
        if self.indicator == "rnd":
            qr_opt = adam([self.indicators_.bias], lr=float(self.qr_lr), eps=1e-8)
            state.update(indicators=self.indicators_, qr_opt=qr_opt)
        warmup = int(self.steps) // 25 if self.warmup is None else int(self.warmup)
        gen = torch.Generator().manual_seed(int(self.seed))
        gamma, tau, p = float(self.gamma), float(self.tau), float(self.p)

        def step(i: int) -> dict:
            idx = torch.randint(len(obs), (B,), generator=gen)
            logs = {}
            if self.indicator == "rnd":
                o = F[idx] + self.indicators_.bias
                qr = quantile_loss(o, p)
                qr_opt.zero_grad()
                qr.backward()
                qr_opt.step()
                c = (o.detach() > 0).float()
                logs["fire_rate"] = float(c.mean())
            else:
                c = F[idx]
            if i < warmup:  # the QR warm-up: the TD loss is masked
                return logs
            psi = online["head"](online["torso"](obs_tensor(obs[idx]))).view(B, T, A)
            with torch.no_grad():
                nxt_psi = target["head"](target["torso"](obs_tensor(nxt[idx]))).view(B, T, A)
            loss = dsm_loss(psi, act[idx], dsm_targets(c, nxt_psi, term[idx], gamma))
            opt.zero_grad()
            loss.backward()
            opt.step()
            ema_update(target, online, tau)
            if not torch.isfinite(loss):
                raise AnytaskError(f"the PVN loss became {float(loss)}; lower lr={self.lr}")
            logs["loss"] = float(loss.detach())
            return logs

        self._run(data, step, state, int(self.steps), gen, desc=f"PVN {data.env_id}")

    def fire_rate(self, obs) -> np.ndarray:
        """The share of ``obs`` each indicator fires on, ``(T,)`` (the calibration check)."""
        obs = check_obs(obs, self.obs_shape_, "this PVN")
        F = self._cumulants(obs)
        fired = (F + self.indicators_.bias.detach() > 0) if self.indicator == "rnd" else F > 0
        return fired.float().mean(0).numpy()

    def _modules(self) -> dict[str, nn.Module]:
        return {"head": self.head_, **({"indicators": self.indicators_} if self.indicator == "rnd" else {})}

    def _build_from_saved(self, extra) -> None:
        self._build(None)
