"""RL-100 (Lei et al. 2025, https://arxiv.org/abs/2510.14830; card 15): a diffusion policy trained by imitation,
improved by iterative offline RL whose every update is gated by off-policy evaluation, fine-tuned by a short online
RL stage, and distilled into a one-step policy, on the push world (``anytask/Push-v0``, state observations).

- **Policy**: an MLP denoiser predicting the clean action ``a_0`` from ``(a_tau, tau, s)`` (the "sample"
  parametrisation; epsilon-prediction learned these discontinuous pushes far slower here) with ``K`` steps (cosine
  schedule). Acting runs the deterministic DDIM chain from ``a_K ~ N(0, I)`` (a map of ``(s, a_K)``, the one the
  student distils); exploring adds ``N(0, sigma_min^2)`` to every step (DPPO's DDIM fine-tuning), so each
  denoising step is a Gaussian whose log-probability is closed-form (``chain_logprob``).
- **Stage 1, imitation**: the denoising loss on scripted demonstrations of mixed quality (noise levels
  ``demo_noise``; some fail).
- **Stage 2, iterative offline RL**: fit a critic by fitted-Q evaluation (FQE) of the current policy on the buffer;
  propose a PPO-clip update in which every denoising step is an action (advantages ``Q(s, a_0) - mean_m Q(s,
  a_0^m)`` over ``m`` chains per state), plus the imitation loss on the buffer's successful episodes (the card's
  "retrain the IL policy on D"); accept it only if the FQE estimate of the new policy's value from the start
  states beats the old one's (the OPE gate); then add ``rollouts`` episodes of the current policy to the buffer.
- **Stage 3, online RL**: PPO over the denoising chain on fresh episodes, GAE advantages from a value network.
- **Distillation**: a one-step student ``g(s, a_K)`` regressed on the chain's output for the same ``a_K``.

``checkpoint_dir`` keeps a checkpoint after imitation and after every offline / online iteration (atomic); a fit
with the same settings resumes from it, one with other settings is refused.

Departures (no official code; hyperparameters unknown): FQE stands in for the paper's AM-Q estimator; state
observations, not point clouds; no action chunks. ``history_`` records every stage: success and return measured by
rollouts beside the OPE estimate, the gate's decisions, and (``gate_check=True``) a deliberately corrupted update
per iteration (advantages with the wrong sign) and whether the gate rejected it.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry

MANIPULATION: Registry = Registry("manipulation policy", family="control")
LOG2PI = math.log(2 * math.pi)


def mlp(d_in: int, d_out: int, hidden: int, depth: int = 2) -> nn.Sequential:
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.Mish()]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, d_out))


def push_sim(env_id: str, n: int, **env_kwargs):
    """The batched simulator behind ``env_id`` (only the push world has one), or a clear error."""
    from anytask.data.envs import gym
    from anytask.data.pushworld import PushSim

    if env_id != "anytask/Push-v0":
        registered = env_id in gym().registry
        raise AnytaskError(f"{env_id!r}: this policy learns on the batched push world 'anytask/Push-v0' only"
                           + ("" if registered else " (and no environment of that id is registered)"))
    unknown = set(env_kwargs) - {"body", "max_steps"}
    if unknown:
        raise AnytaskError(f"unknown push-world options {sorted(unknown)}; use body= or max_steps=")
    return PushSim(n, **env_kwargs)


def push_features(state: torch.Tensor) -> torch.Tensor:
    """Policy inputs from push-world states ``[tip, object, goal(, joints)]``: the state, object - tip and
    goal - object."""
    return torch.cat([state, state[:, 2:4] - state[:, 0:2], state[:, 4:6] - state[:, 2:4]], 1)


class Schedule:
    """Diffusion constants for ``K`` steps (cosine schedule) and the exploration noise ``sigma_min`` per step."""

    def __init__(self, K: int, sigma_min: float):
        t = torch.linspace(0, 1, K + 1, dtype=torch.float64)
        abar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        abar = abar / abar[0]
        self.betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999).float()
        self.alphas = 1 - self.betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.sigma = torch.full((K,), float(sigma_min))  # exploration noise added to every deterministic step
        self.K = int(K)


class DiffusionPolicy(nn.Module):
    """The denoiser and the sampling / log-probability of its chain."""

    def __init__(self, s_dim: int, a_dim: int, K: int, hidden: int, sigma_min: float):
        super().__init__()
        self.s_dim, self.a_dim = int(s_dim), int(a_dim)
        self.sched = Schedule(K, sigma_min)
        self.tau_emb = nn.Embedding(K, 16)
        self.net = mlp(s_dim + a_dim + 16, a_dim, hidden)

    def denoise(self, a: torch.Tensor, tau: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The predicted clean action ``a_0`` (in the action box) from ``a_tau``."""
        return torch.tanh(self.net(torch.cat([a, s, self.tau_emb(tau)], 1)))

    def mean(self, a: torch.Tensor, k: int, s: torch.Tensor) -> torch.Tensor:
        """The deterministic (DDIM, eta = 0) step from ``a_tau`` to ``a_{tau-1}`` for step index ``k`` (``tau = k +
        1``): predict ``a_0``, then re-noise it to level ``tau - 1`` with the implied noise."""
        sc = self.sched
        a0 = self.denoise(a, torch.full((len(a),), k, dtype=torch.long), s)
        if k == 0:
            return a0
        eps = (a - sc.abar[k].sqrt() * a0) / (1 - sc.abar[k]).sqrt()
        prev = sc.abar[k - 1]
        return prev.sqrt() * a0 + (1 - prev).sqrt() * eps

    def il_loss(self, s: torch.Tensor, a: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Imitation: noise ``a`` to a random level and predict it back (the "sample" parametrisation)."""
        k = torch.randint(0, self.sched.K, (len(a),), generator=gen)
        noise = torch.randn(a.shape, generator=gen)
        ab = self.sched.abar[k][:, None]
        return ((self.denoise(ab.sqrt() * a + (1 - ab).sqrt() * noise, k, s) - a) ** 2).mean()

    def sample(self, s: torch.Tensor, gen: torch.Generator, *, explore: bool = False, a_K=None):
        """Actions ``(B, a_dim)``; with ``explore`` the stochastic chain, returned as ``(actions, chain)`` where
        ``chain`` is ``(K + 1, B, a_dim)`` from ``a_K`` down to ``a_0``."""
        a = torch.randn(len(s), self.a_dim, generator=gen) if a_K is None else a_K
        chain = [a]
        for k in reversed(range(self.sched.K)):
            a = self.mean(a, k, s)
            if explore:
                a = a + self.sched.sigma[k] * torch.randn(a.shape, generator=gen)
            chain.append(a)
        return (a.clamp(-1, 1), torch.stack(chain)) if explore else a.clamp(-1, 1)

    def chain_logprob(self, s: torch.Tensor, chain: torch.Tensor) -> torch.Tensor:
        """``(B, K)``: log N(a_{tau-1}; mu_theta(a_tau, tau, s), sigma_tau^2) of each denoising step of ``chain``."""
        out = []
        for i, k in enumerate(reversed(range(self.sched.K))):
            mu, sig = self.mean(chain[i], k, s), self.sched.sigma[k]
            out.append((-0.5 * ((chain[i + 1] - mu) / sig) ** 2 - torch.log(sig) - 0.5 * LOG2PI).sum(1))
        return torch.stack(out, 1)


def ppo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, clip: float) -> torch.Tensor:
    """The PPO-clip objective (to minimise) over every denoising step: ``adv`` ``(B,)`` shared by the ``K`` steps."""
    ratio = torch.exp(logp_new - logp_old)
    a = adv[:, None]
    return -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()


@MANIPULATION.register("rl100", reference="Lei et al. 2025, https://arxiv.org/abs/2510.14830", saveable=True,
                       input="environments", output="actions")
class RL100(BaseEstimator, Pretrained):
    """Imitation -> OPE-gated iterative offline RL -> online RL -> one-step distillation (see the module)."""

    def __init__(self, K: int = 10, hidden: int = 128, sigma_min: float = 0.1, demos: int = 100,
                 demo_noise: tuple = (0.2, 0.6, 1.2), il_steps: int = 2000, offline_iters: int = 5,
                 rollouts: int = 64, fqe_steps: int = 1000, ppo_steps: int = 100, clip: float = 0.2,
                 bc_coef: float = 0.5, online_iters: int = 8, online_episodes: int = 64, distill_steps: int = 2000,
                 gamma: float = 0.97, lr: float = 3e-4, batch_size: int = 256, gate_check: bool = False,
                 eval_episodes: int = 200,
                 seed: int = 0, progress: bool = False, checkpoint_dir: str | None = None):
        self.K, self.hidden, self.sigma_min, self.demos, self.demo_noise = K, hidden, sigma_min, demos, demo_noise
        self.il_steps, self.offline_iters, self.rollouts, self.fqe_steps = il_steps, offline_iters, rollouts, fqe_steps
        self.ppo_steps, self.clip, self.bc_coef = ppo_steps, clip, bc_coef
        self.online_iters, self.online_episodes, self.distill_steps = online_iters, online_episodes, distill_steps
        self.gamma, self.lr, self.batch_size, self.gate_check = gamma, lr, batch_size, gate_check
        self.eval_episodes, self.seed, self.progress = eval_episodes, seed, progress
        self.checkpoint_dir = checkpoint_dir

    def _check_params(self) -> None:
        for name in ("K", "hidden", "demos", "il_steps", "rollouts", "fqe_steps", "ppo_steps", "online_episodes",
                     "distill_steps", "batch_size", "eval_episodes"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        for name in ("offline_iters", "online_iters"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise AnytaskError(f"{name}={v!r}: must be a non-negative integer")
        if not 0 < self.clip < 1 or not 0 < self.gamma < 1 or self.sigma_min <= 0:
            raise AnytaskError("clip and gamma must lie in (0, 1) and sigma_min must be positive")
        if not self.demo_noise or min(self.demo_noise) < 0:
            raise AnytaskError(f"demo_noise={self.demo_noise!r}: give one or more non-negative noise levels")

    # -- rollouts -----------------------------------------------------------------------------------------------
    def _episodes(self, act, n: int, seed: int, record_chain: bool = False) -> dict:
        """Run ``n`` episodes together; ``act(state_tensor, sim) -> actions`` (or ``(actions, chain)``)."""
        sim = push_sim(self.env_id_, n, **self.env_kwargs_)
        sim.reset(np.random.default_rng(seed))
        S, A, R, S2, T, C, E, start = [], [], [], [], [], [], [], sim.state()
        ret, disc = np.zeros(n), np.ones(n)
        while not sim.done.all():
            live = ~sim.done
            s = sim.state()
            out = act(torch.from_numpy(s), sim)
            a, chain = out if isinstance(out, tuple) else (out, None)
            a = np.clip(np.asarray(a, np.float32), -1, 1)  # what the world executes
            _, r, succ, done = sim.step(a)
            ret += disc * r
            disc *= np.where(live, self.gamma, 1.0)
            S.append(s[live]), A.append(a[live]), R.append(r[live]), S2.append(sim.state()[live])
            T.append(succ[live]), E.append(np.nonzero(live)[0])
            if record_chain:
                C.append(chain[:, torch.from_numpy(live)])
        success = sim.distance() < 0.08
        out = {"s": np.concatenate(S), "a": np.concatenate(A), "r": np.concatenate(R).astype(np.float32),
               "s2": np.concatenate(S2), "terminal": np.concatenate(T), "episode": np.concatenate(E),
               "start": start, "success": success, "return": ret}
        if record_chain:
            out["chain"] = torch.cat(C, 1)
        return out

    def _demos(self, n: int, seed: int) -> dict:
        from anytask.data.pushworld import scripted_push

        rng = np.random.default_rng(seed + 7)
        levels = np.asarray(self.demo_noise, float)[np.arange(n) % len(self.demo_noise)]
        return self._episodes(lambda s, sim: scripted_push(sim, 0.0) + rng.normal(0, 1, (n, 2)) * levels[:, None],
                              n, seed)

    def _act_fn(self, policy: DiffusionPolicy, gen: torch.Generator, explore: bool = False):
        @torch.no_grad()
        def act(s, sim):
            return policy.sample(push_features(s), gen, explore=explore)
        return act

    def _evaluate(self, policy, episodes: int, seed: int) -> dict:
        """Success and mean discounted return of ``policy`` (a DiffusionPolicy, or None: the one-step student)."""
        gen = torch.Generator().manual_seed(seed)
        act = self._act_fn(policy, gen) if policy is not None else \
            (lambda s, sim: self._one_step(push_features(s), gen))
        ep = self._episodes(act, episodes, seed)
        return {"success": float(ep["success"].mean()), "return": float(ep["return"].mean())}

    # -- critic: fitted-Q evaluation ----------------------------------------------------------------------------
    def _fqe(self, policy: DiffusionPolicy, buf: dict, seed: int) -> float:
        """Fit Q of ``policy``'s deployed (deterministic-chain) actions on ``buf``; return the estimated discounted
        value of the start states, and keep the critic in ``self._q``. The gate compares two policies with the same
        ``seed`` (same critic initialisation, batches and action noise: common random numbers)."""
        gen = torch.Generator().manual_seed(int(seed))
        torch.manual_seed(int(seed))
        s, s2 = torch.from_numpy(buf["s"]), torch.from_numpy(buf["s2"])
        with torch.no_grad():
            a2 = policy.sample(push_features(s2), gen)
        x = torch.cat([push_features(s), torch.from_numpy(buf["a"])], 1)
        x2 = torch.cat([push_features(s2), a2], 1)
        r, notterm = torch.from_numpy(buf["r"]), torch.from_numpy(~buf["terminal"]).float()
        q = mlp(x.shape[1], 1, 256)
        target = copy.deepcopy(q)
        opt = torch.optim.Adam(q.parameters(), lr=1e-3)
        for step in range(int(self.fqe_steps)):
            idx = torch.randint(0, len(x), (int(self.batch_size),), generator=gen)
            with torch.no_grad():
                y = r[idx] + self.gamma * notterm[idx] * target(x2[idx])[:, 0]
            loss = ((q(x[idx])[:, 0] - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (step + 1) % 100 == 0:
                target.load_state_dict(q.state_dict())
        self._q = q
        with torch.no_grad():
            s0 = torch.from_numpy(self._starts).repeat(4, 1)
            a0 = policy.sample(push_features(s0), gen)
            return float(q(torch.cat([push_features(s0), a0], 1)).mean())

    # -- policy updates -----------------------------------------------------------------------------------------
    def _offline_update(self, policy: DiffusionPolicy, buf: dict, good: dict, gen: torch.Generator,
                        sign: float = 1.0) -> DiffusionPolicy:
        """A PPO-clip candidate over the denoising chain, advantages from the current critic ``self._q``."""
        new = copy.deepcopy(policy)
        n, m = min(len(buf["s"]), 2048), 4
        idx = torch.randperm(len(buf["s"]), generator=gen)[:n]
        s = push_features(torch.from_numpy(buf["s"])[idx]).repeat(m, 1)
        with torch.no_grad():
            a0, chain = policy.sample(s, gen, explore=True)
            q = self._q(torch.cat([s, a0], 1))[:, 0].view(m, n)
            adv = (q - q.mean(0, keepdim=True)).flatten()
            adv = sign * adv / (adv.std() + 1e-8)
            old = policy.chain_logprob(s, chain)
        self._ppo(new, s, chain, old, adv, good, gen)
        return new

    def _ppo(self, policy, s, chain, old, adv, good, gen) -> None:
        opt = torch.optim.Adam(policy.parameters(), lr=float(self.lr))
        gs, ga = push_features(torch.from_numpy(good["s"])), torch.from_numpy(good["a"])
        bs = int(self.batch_size)
        for _ in range(int(self.ppo_steps)):
            i = torch.randint(0, len(s), (bs,), generator=gen)
            loss = ppo_loss(policy.chain_logprob(s[i], chain[:, i]), old[i], adv[i], float(self.clip))
            if self.bc_coef > 0 and len(ga):
                j = torch.randint(0, len(ga), (bs,), generator=gen)
                loss = loss + float(self.bc_coef) * policy.il_loss(gs[j], ga[j], gen)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()

    def _online(self, policy: DiffusionPolicy, good: dict, gen: torch.Generator, it: int) -> None:
        """One on-policy PPO iteration: fresh episodes of the stochastic chain, GAE(0.95) from a value network."""
        ep = self._episodes(self._act_fn(policy, gen, explore=True), int(self.online_episodes),
                            int(self.seed) * 1000 + 500 + it, record_chain=True)
        s, s2 = push_features(torch.from_numpy(ep["s"])), push_features(torch.from_numpy(ep["s2"]))
        r, term = torch.from_numpy(ep["r"]), torch.from_numpy(ep["terminal"]).float()
        if not hasattr(self, "_v"):
            self._v = mlp(s.shape[1], 1, 256)
            self._vopt = torch.optim.Adam(self._v.parameters(), lr=1e-3)
        with torch.no_grad():
            v, v2 = self._v(s)[:, 0], self._v(s2)[:, 0]
        delta = r + self.gamma * (1 - term) * v2 - v
        adv = torch.zeros_like(delta)
        epi = ep["episode"]
        nxt = {}  # GAE backwards through each episode's steps (rows are time-major)
        for row in range(len(delta) - 1, -1, -1):
            e = int(epi[row])
            adv[row] = delta[row] + self.gamma * 0.95 * nxt.get(e, 0.0)
            nxt[e] = float(adv[row])
        ret = adv + v
        for _ in range(200):
            i = torch.randint(0, len(s), (int(self.batch_size),), generator=gen)
            loss = ((self._v(s[i])[:, 0] - ret[i]) ** 2).mean()
            self._vopt.zero_grad()
            loss.backward()
            self._vopt.step()
        with torch.no_grad():
            old = policy.chain_logprob(s, ep["chain"])
        self._ppo(policy, s, ep["chain"], old, (adv - adv.mean()) / (adv.std() + 1e-8), good, gen)

    # -- fit ----------------------------------------------------------------------------------------------------
    def fit(self, env_id: str = "anytask/Push-v0", y=None, **env_kwargs):
        """Run the four stages on ``env_id`` (the push world; ``body=`` / ``max_steps=`` pass to it)."""
        from tqdm.auto import tqdm

        self._check_params()
        self.env_id_, self.env_kwargs_ = env_id, dict(env_kwargs)
        push_sim(env_id, 1, **env_kwargs)  # a clear error before any work
        seed = int(self.seed)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        demos = self._demos(int(self.demos), seed)
        s_dim = push_features(torch.from_numpy(demos["s"][:1])).shape[1]
        self.s_dim_ = int(demos["s"].shape[1])
        policy = DiffusionPolicy(s_dim, 2, int(self.K), int(self.hidden), float(self.sigma_min))
        ev = int(seed) * 1000 + 999_000  # evaluation episodes, disjoint from training ones
        self.history_ = [{"stage": "demos", "success": float(demos["success"].mean()),
                          "return": float(demos["return"].mean())}]
        total = 2 + int(self.offline_iters) + int(self.online_iters)
        bar = tqdm(total=total, desc="RL-100", disable=not self.progress, leave=False)

        buf = {k: demos[k] for k in ("s", "a", "r", "s2", "terminal")}
        ep_ok = demos["success"][demos["episode"]]
        good = {"s": demos["s"][ep_ok], "a": demos["a"][ep_ok]}
        self._starts = demos["start"]
        done, ck = 0, self._resume(policy, gen)  # stages finished (imitation, each offline / online iteration)
        if ck is not None:
            done, buf, good = ck
            bar.update(done)

        # Stage 1: imitation on every demonstration
        if done < 1:
            opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
            s, a = push_features(torch.from_numpy(demos["s"])), torch.from_numpy(demos["a"])
            for _ in range(int(self.il_steps)):
                i = torch.randint(0, len(a), (int(self.batch_size),), generator=gen)
                loss = policy.il_loss(s[i], a[i], gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
            ope = self._fqe(policy, buf, seed)
            self.history_.append({"stage": "imitation", "ope": ope,
                                  **self._evaluate(policy, int(self.eval_episodes), ev)})
            done = self._checkpoint(1, policy, buf, good, gen, bar)

        # Stage 2: iterative offline RL, each update gated by OPE
        for it in range(int(self.offline_iters)):
            if done >= 2 + it:
                continue
            fqe_seed = seed * 1000 + 100 + it
            ope = self._fqe(policy, buf, fqe_seed)  # the current policy's value on the current buffer
            cand = self._offline_update(policy, buf, good, gen)
            bad = self._offline_update(policy, buf, good, gen, sign=-1.0) if self.gate_check else None
            ope_new = self._fqe(cand, buf, fqe_seed)
            row = {"stage": "offline", "iter": it, "ope_old": ope, "ope": ope_new, "accepted": bool(ope_new > ope),
                   **self._evaluate(cand, int(self.eval_episodes), ev)}
            if bad is not None:
                ope_bad = self._fqe(bad, buf, fqe_seed)
                row.update(corrupted_ope=ope_bad, corrupted_rejected=bool(ope_bad <= ope),
                           corrupted_success=self._evaluate(bad, int(self.eval_episodes), ev)["success"])
            if row["accepted"]:
                policy.load_state_dict(cand.state_dict())
            self.history_.append(row)
            new = self._episodes(self._act_fn(policy, gen), int(self.rollouts), seed * 1000 + it)
            for k in buf:
                buf[k] = np.concatenate([buf[k], new[k]])
            ok = new["success"][new["episode"]]
            good = {"s": np.concatenate([good["s"], new["s"][ok]]), "a": np.concatenate([good["a"], new["a"][ok]])}
            done = self._checkpoint(2 + it, policy, buf, good, gen, bar)

        # Stage 3: short online RL
        first_online = 2 + int(self.offline_iters)
        for it in range(int(self.online_iters)):
            if done >= first_online + it:
                continue
            self._online(policy, good, gen, it)
            done = self._checkpoint(first_online + it, policy, buf, good, gen, bar)
        if self.online_iters:
            self.history_.append({"stage": "online", **self._evaluate(policy, int(self.eval_episodes), ev)})

        # Distillation into a one-step student
        self.policy_ = policy.eval()
        self.student_ = self._distill(policy, buf, gen)
        self.history_.append({"stage": "one-step", **self._evaluate(None, int(self.eval_episodes), ev)})
        bar.update()
        bar.close()
        for attr in ("_q", "_v", "_vopt", "_starts"):
            self.__dict__.pop(attr, None)
        return self

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def _fingerprint(self) -> dict:
        params = {k: repr(v) for k, v in self.get_params(deep=False).items() if k not in ("progress", "checkpoint_dir")}
        return {"class": type(self).__name__, "params": params, "env_id": self.env_id_,
                "env_kwargs": repr(sorted(self.env_kwargs_.items()))}

    def _checkpoint(self, done: int, policy, buf: dict, good: dict, gen: torch.Generator, bar) -> int:
        """Save everything the remaining stages need after ``done`` stages (atomically); returns ``done``."""
        bar.update()
        if self.checkpoint_dir is None:
            return done
        from anytask.methods.control.base import save_checkpoint

        state = {"fingerprint": self._fingerprint(), "done": done, "history": self.history_,
                 "policy": policy.state_dict(), "gen": gen.get_state(), "rng": torch.get_rng_state(),
                 "buf": {k: torch.from_numpy(v) for k, v in buf.items()},
                 "good": {k: torch.from_numpy(v) for k, v in good.items()}}
        if hasattr(self, "_v"):
            state.update(v=self._v.state_dict(), vopt=self._vopt.state_dict())
        save_checkpoint(self.checkpoint_dir, state)
        return done

    def _resume(self, policy, gen: torch.Generator):
        """``(done, buf, good)`` from the checkpoint in ``checkpoint_dir`` (policy, RNGs, history restored), or None."""
        from anytask.methods.control.base import load_checkpoint

        ck = load_checkpoint(self.checkpoint_dir, self._fingerprint())
        if ck is None:
            return None
        policy.load_state_dict(ck["policy"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["rng"])
        self.history_ = list(ck["history"])
        if "v" in ck:
            self._v = mlp(policy.net[0].in_features - 2 - 16, 1, 256)
            self._v.load_state_dict(ck["v"])
            self._vopt = torch.optim.Adam(self._v.parameters(), lr=1e-3)
            self._vopt.load_state_dict(ck["vopt"])
        unpack = lambda d: {k: v.numpy() for k, v in d.items()}  # noqa: E731
        return int(ck["done"]), unpack(ck["buf"]), unpack(ck["good"])

    def _distill(self, policy: DiffusionPolicy, buf: dict, gen: torch.Generator) -> nn.Module:
        s_all = push_features(torch.from_numpy(buf["s"]))
        student = mlp(s_all.shape[1] + 2, 2, 256)
        opt = torch.optim.Adam(student.parameters(), lr=1e-3)
        for _ in range(int(self.distill_steps)):
            i = torch.randint(0, len(s_all), (int(self.batch_size),), generator=gen)
            z = torch.randn(len(i), 2, generator=gen)
            with torch.no_grad():
                target = policy.sample(s_all[i], gen, a_K=z)
            loss = ((torch.tanh(student(torch.cat([s_all[i], z], 1))) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return student.eval()

    @torch.no_grad()
    def _one_step(self, feats: torch.Tensor, gen: torch.Generator, a_K=None) -> torch.Tensor:
        z = torch.randn(len(feats), 2, generator=gen) if a_K is None else a_K
        return torch.tanh(self.student_(torch.cat([feats, z], 1)))

    # -- use ----------------------------------------------------------------------------------------------------
    def _states(self, states) -> torch.Tensor:
        check_is_fitted(self, "policy_")
        s = np.asarray(states, np.float32)
        if s.ndim == 1:
            s = s[None]
        if s.ndim != 2 or s.shape[1] != self.s_dim_:
            raise AnytaskError(f"this policy was trained on push-world states of {self.s_dim_} numbers; got shape "
                               f"{np.asarray(states).shape} (use obs='state' and the same body)")
        if not np.isfinite(s).all():
            raise AnytaskError("states contain NaN or inf")
        return push_features(torch.from_numpy(s))

    def predict(self, states, *, one_step: bool = False, noise=None) -> np.ndarray:
        """Actions ``(N, 2)`` for states ``(N, D)``: the multi-step chain, or the distilled one-step student. The
        starting noise ``a_K`` is ``noise`` ``(N, 2)`` when given, else drawn from a generator seeded by ``seed``."""
        feats = self._states(states)
        gen = torch.Generator().manual_seed(int(self.seed))
        z = torch.randn(len(feats), 2, generator=gen) if noise is None else torch.as_tensor(noise, dtype=torch.float32)
        if z.shape != (len(feats), 2):
            raise AnytaskError(f"noise must have shape ({len(feats)}, 2), got {tuple(z.shape)}")
        with torch.no_grad():
            a = self._one_step(feats, gen, z) if one_step else self.policy_.sample(feats, gen, a_K=z)
        return a.numpy()

    def evaluate(self, episodes: int = 500, *, one_step: bool = False, seed: int = 2_000_000) -> dict:
        """Success rate and mean discounted return over ``episodes`` fresh episodes."""
        check_is_fitted(self, "policy_")
        return self._evaluate(None if one_step else self.policy_, int(episodes), seed)

    def latency(self, repeats: int = 200) -> dict:
        """Milliseconds per action at batch 1, multi-step chain vs one-step student (median of ``repeats``)."""
        feats = self._states(np.zeros(self.s_dim_, np.float32))
        gen = torch.Generator().manual_seed(0)
        out = {}
        for name, fn in (("multi_step_ms", lambda: self.policy_.sample(feats, gen)),
                         ("one_step_ms", lambda: self._one_step(feats, gen))):
            times = []
            with torch.no_grad():
                for _ in range(int(repeats)):
                    t = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t) * 1000)
            out[name] = float(np.median(times))
        return out

    # -- save / load --------------------------------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "policy_")
        tensors = {f"policy.{k}": v for k, v in self.policy_.state_dict().items()}
        tensors.update({f"student.{k}": v for k, v in self.student_.state_dict().items()})
        return {"env_id": self.env_id_, "env_kwargs": self.env_kwargs_, "s_dim": self.s_dim_,
                "history": self.history_}, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        m = cls(**params)
        m.env_id_, m.env_kwargs_, m.s_dim_, m.history_ = extra["env_id"], dict(extra["env_kwargs"]), \
            int(extra["s_dim"]), extra["history"]
        f_dim = m.s_dim_ + 4
        m.policy_ = DiffusionPolicy(f_dim, 2, int(m.K), int(m.hidden), float(m.sigma_min))
        m.policy_.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("policy.")})
        m.student_ = mlp(f_dim + 2, 2, 256)
        m.student_.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("student.")})
        m.policy_.eval(), m.student_.eval()
        return m

    def _card_fields(self) -> dict:
        return {"input": f"push-world states ({self.s_dim_} numbers)", "output": "tip actions (2 numbers in [-1, 1])"}
