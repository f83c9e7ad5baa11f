"""Value-based learners over Gymnasium environments with discrete actions: a linear Q-function on a frozen
encoder's features (``linear_q``, the PVN paper's evaluation protocol) and DQN trained end to end from scratch
(``dqn``, the baseline at the same budget of reward interactions).

Both are double DQN (Mnih et al. 2015; van Hasselt et al. 2016) with the same loop and settings: epsilon-greedy
from ``eps_start`` to ``eps_end`` over the first ``eps_fraction`` of the steps, uniform replay (one update of
``batch_size`` every ``train_every`` steps), ``n_step`` returns, a target network copied every ``target_update``
steps, Adam, Huber loss, gradient norm clipped to 10, rewards clipped to [-1, 1]. A frozen encoder's features
are computed once per step for acting and kept in the replay, so the linear learner never runs the torso again;
DQN stores frames and trains its own torso.

    agent = LEARNERS.get("linear_q")(encoder=pvn, steps=100_000).fit("MinAtar/Breakout-v1")
    agent.evaluate("MinAtar/Breakout-v1", episodes=20)     # mean return of the greedy policy
    agent.curve_                                           # (step, return) of every training episode
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.methods.control.base import (
    LEARNERS, StateEncoder, Torso, adam, check_obs, load_checkpoint, obs_tensor, save_checkpoint,
)


def nstep_return(rewards: list[float], gamma: float, terminated: bool) -> tuple[float, float]:
    """``(sum_k gamma^k r_k, discount)`` for a replay row whose next ``len(rewards)`` rewards are known: the
    discount on the bootstrap value of the state after them is ``gamma^n``, or 0 when the episode terminated there
    (a truncation still bootstraps)."""
    return sum(gamma ** k * r for k, r in enumerate(rewards)), (0.0 if terminated else gamma ** len(rewards))


class QLearner(BaseEstimator, Pretrained):
    """The shared double-DQN loop. Subclasses say what a replay row holds (``_x``) and the network (``_net``)."""

    def _check_params(self) -> None:
        for name in ("steps", "batch_size", "buffer_size", "n_step", "target_update", "train_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        if not 0 <= self.gamma < 1:
            raise AnytaskError(f"gamma={self.gamma}: must lie in [0, 1)")
        if not 0 <= self.eps_end <= self.eps_start <= 1:
            raise AnytaskError(f"need 0 <= eps_end ({self.eps_end}) <= eps_start ({self.eps_start}) <= 1")

    # -- what a learner provides --------------------------------------------------------------------------------
    def _x(self, obs: np.ndarray) -> torch.Tensor:
        """Replay rows for a batch of observations."""
        raise NotImplementedError

    def _net(self) -> nn.Module:
        raise NotImplementedError

    def _identity(self) -> str:
        return ""

    # -- training -----------------------------------------------------------------------------------------------
    def _epsilon(self, t: int) -> float:
        frac = min(1.0, t / max(1.0, float(self.eps_fraction) * int(self.steps)))
        return float(self.eps_start) + frac * (float(self.eps_end) - float(self.eps_start))

    def fit(self, env_id: str, y=None):
        """Learn online in ``env_id`` for ``steps`` environment steps (the budget of reward interactions)."""
        from anytask.data.envs import as_uint8, check_discrete, make_env

        self._check_params()
        self.__dict__.pop("encoder_", None)  # a refit reads the encoder parameter again
        if not isinstance(env_id, str):
            raise AnytaskError(f"fit takes a registered Gymnasium environment id, not {type(env_id).__name__}")
        env = make_env(env_id)
        self.n_actions_ = check_discrete(env, type(self).__name__)
        obs, _ = env.reset(seed=int(self.seed))
        self.env_id_, self.obs_shape_ = env_id, tuple(np.asarray(obs).shape)
        self._check_env(env_id)
        torch.manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        self.q_ = self._net()
        target = copy.deepcopy(self.q_)
        opt = adam(self.q_.parameters(), lr=float(self.lr))
        x0 = self._x(as_uint8(obs)[None])[0]
        size = min(int(self.buffer_size), int(self.steps))
        X = torch.zeros((size, *x0.shape), dtype=x0.dtype)
        Xn, A = torch.zeros_like(X), torch.zeros(size, dtype=torch.long)
        R, D = torch.zeros(size), torch.zeros(size)
        state = {"q": self.q_, "target": target, "opt": opt}
        fingerprint = {"class": type(self).__name__, "env_id": env_id, "identity": self._identity(),
                       "params": {k: repr(v) for k, v in self.get_params(deep=False).items()
                                  if k not in ("progress", "checkpoint_dir", "encoder")}}
        start, ptr, filled, self.curve_ = 0, 0, 0, []
        ck = load_checkpoint(self.checkpoint_dir, fingerprint)
        if ck is not None:  # the environment's own state is not saved: the resumed run starts a new episode
            for k, obj in state.items():
                obj.load_state_dict(ck["state"][k])
            start, ptr, filled, self.curve_ = int(ck["step"]), int(ck["ptr"]), int(ck["filled"]), list(ck["curve"])
            rows = ck["replay"]
            X[:filled], Xn[:filled], A[:filled], R[:filled], D[:filled] = (rows[k] for k in ("X", "Xn", "A", "R", "D"))
            rng = np.random.default_rng([int(self.seed), start])
            torch.manual_seed(int(self.seed) + start)
        gamma, n = float(self.gamma), int(self.n_step)
        pending: list[tuple[torch.Tensor, int, float]] = []  # the last n (x, a, r) not yet in the replay
        x, ret, ep_start = x0, 0.0, start
        bar = tqdm(range(start, int(self.steps)), initial=start, total=int(self.steps), disable=not self.progress,
                   desc=f"{type(self).__name__} {env_id}", leave=False)
        for t in bar:
            if rng.random() < self._epsilon(t):
                a = int(rng.integers(self.n_actions_))
            else:
                with torch.no_grad():
                    a = int(self.q_(self._torso_in(x[None])).argmax(1))
            nxt, r, term, trunc, _ = env.step(a)
            ret += float(r)
            x_next = self._x(as_uint8(nxt)[None])[0]
            pending.append((x, a, float(np.clip(r, -1, 1))))
            done = term or trunc
            # flush n-step rows: a full window, or every pending row when the episode ends
            while pending and (len(pending) == n or done):
                g, disc = nstep_return([rr for _, _, rr in pending], gamma, bool(term))
                x0_, a0_, _ = pending.pop(0)
                X[ptr], Xn[ptr], A[ptr], R[ptr], D[ptr] = x0_, x_next, a0_, g, disc
                ptr, filled = (ptr + 1) % size, min(filled + 1, size)
            if done:
                self.curve_.append((t + 1, ret, t + 1 - ep_start))
                bar.set_postfix(ret=f"{np.mean([c[1] for c in self.curve_[-20:]]):.2f}")
                obs, _ = env.reset()
                x_next, ret, ep_start = self._x(as_uint8(obs)[None])[0], 0.0, t + 1
            x = x_next
            if t >= int(self.learning_starts) and filled >= int(self.batch_size) and t % int(self.train_every) == 0:
                idx = torch.as_tensor(rng.integers(filled, size=int(self.batch_size)))
                self._update(opt, target, X[idx], A[idx], R[idx], Xn[idx], D[idx])
            if (t + 1) % int(self.target_update) == 0:
                target.load_state_dict(self.q_.state_dict())
            if self.checkpoint_dir is not None and (t + 1) % int(self.checkpoint_every) == 0:
                save_checkpoint(self.checkpoint_dir, {
                    "fingerprint": fingerprint, "step": t + 1, "ptr": ptr, "filled": filled, "curve": self.curve_,
                    "state": {k: obj.state_dict() for k, obj in state.items()},
                    "replay": {"X": X[:filled], "Xn": Xn[:filled], "A": A[:filled], "R": R[:filled],
                               "D": D[:filled]}})
        env.close()
        self.q_.eval()
        return self

    def _torso_in(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _update(self, opt, target, x, a, r, xn, disc) -> float:
        q = self.q_(self._torso_in(x)).gather(1, a[:, None]).squeeze(1)
        with torch.no_grad():
            xn_in = self._torso_in(xn)
            best = self.q_(xn_in).argmax(1, keepdim=True)  # double DQN: the online net picks, the target values
            y = r + disc * target(xn_in).gather(1, best).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_.parameters(), float(self.grad_clip))
        opt.step()
        return float(loss.detach())

    def _check_env(self, env_id: str) -> None:
        """Hook: a learner with a frozen encoder checks it fits this environment."""

    # -- use ----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def q_values(self, obs) -> np.ndarray:
        """``(N, n_actions)`` action values of observations ``(N, *obs_shape)`` (or one observation)."""
        from anytask.data.envs import as_uint8

        check_is_fitted(self, "q_")
        obs = check_obs(obs, self.obs_shape_, f"this {type(self).__name__}")
        return self.q_(self._torso_in(self._x(as_uint8(obs)))).numpy()

    def predict(self, obs) -> np.ndarray:
        """The greedy action for each observation."""
        return self.q_values(obs).argmax(1)

    def evaluate(self, env_id: str | None = None, *, episodes: int = 10, eps: float = 0.001, seed: int = 1_000,
                 max_steps: int = 10_000) -> dict:
        """Mean and spread of the return of the (nearly) greedy policy over ``episodes`` seeded episodes."""
        from anytask.data.envs import as_uint8, make_env

        check_is_fitted(self, "q_")
        env_id = env_id or self.env_id_
        if env_id != self.env_id_:
            raise AnytaskError(f"this policy was trained on {self.env_id_}; its actions mean nothing in {env_id}. "
                               f"Train a learner on {env_id} (the frozen encoder can be reused)")
        env, rng, returns = make_env(env_id), np.random.default_rng(seed), []
        for e in range(int(episodes)):
            obs, _ = env.reset(seed=seed + e)
            ret = 0.0
            for _ in range(int(max_steps)):
                a = int(rng.integers(self.n_actions_)) if rng.random() < eps else int(self.predict(as_uint8(obs))[0])
                obs, r, term, trunc, _ = env.step(a)
                ret += float(r)
                if term or trunc:
                    break
            returns.append(ret)
        env.close()
        return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": returns}

    # -- save / load --------------------------------------------------------------------------------------------
    def _saved_params(self) -> dict:
        return {k: v for k, v in self.get_params(deep=False).items() if k != "encoder"}

    def _get_state(self):
        check_is_fitted(self, "q_")
        extra = {"env_id": self.env_id_, "obs_shape": list(self.obs_shape_), "n_actions": int(self.n_actions_),
                 "curve": [list(c) for c in self.curve_]}
        return extra, {f"q.{k}": v for k, v in self.q_.state_dict().items()}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        agent = cls(**params)
        agent.env_id_, agent.obs_shape_ = extra["env_id"], tuple(extra["obs_shape"])
        agent.n_actions_, agent.curve_ = int(extra["n_actions"]), [tuple(c) for c in extra.get("curve", [])]
        agent._restore(extra, tensors)
        agent.q_ = agent._net()
        agent.q_.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("q.")})
        agent.q_.eval()
        return agent

    def _restore(self, extra, tensors) -> None:
        """Hook: rebuild what ``_net`` needs (a learner's frozen encoder)."""

    def _card_fields(self) -> dict:
        return {"input": f"observations {tuple(self.obs_shape_)} of {self.env_id_}",
                "output": f"{self.n_actions_} action values (q_values), greedy actions (predict)"}


COMMON = dict(steps=100_000, gamma=0.99, n_step=3, lr=2.5e-4, batch_size=32, buffer_size=100_000,
              learning_starts=2_000, train_every=4, target_update=1_000, eps_start=1.0, eps_end=0.01,
              eps_fraction=0.1, grad_clip=10.0, seed=0, progress=False, checkpoint_dir=None, checkpoint_every=25_000)


def store_params(obj, params: dict) -> None:
    """``__init__``'s arguments stored under their own names, unvalidated (scikit-learn's convention)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(obj, name, value)


def _encoder_hash(enc: StateEncoder) -> str:
    h = hashlib.sha256()
    for k, v in sorted(enc.torso_.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@LEARNERS.register("linear_q", reference="Farebrother et al. 2023 (linear probe), https://arxiv.org/abs/2304.12567",
                   saveable=True, input="environments", output="actions")
class LinearQ(QLearner):
    """A linear Q-function on a frozen state encoder (an instance or a saved folder); the encoder never changes."""

    def __init__(self, encoder=None, steps=COMMON["steps"], gamma=COMMON["gamma"], n_step=COMMON["n_step"],
                 lr=COMMON["lr"], batch_size=COMMON["batch_size"], buffer_size=COMMON["buffer_size"],
                 learning_starts=COMMON["learning_starts"], train_every=COMMON["train_every"],
                 target_update=COMMON["target_update"], eps_start=COMMON["eps_start"], eps_end=COMMON["eps_end"],
                 eps_fraction=COMMON["eps_fraction"], grad_clip=COMMON["grad_clip"], seed=COMMON["seed"],
                 progress=COMMON["progress"], checkpoint_dir=COMMON["checkpoint_dir"],
                 checkpoint_every=COMMON["checkpoint_every"]):
        store_params(self, locals())

    def _encoder(self) -> StateEncoder:
        if getattr(self, "encoder_", None) is None:
            enc = self.encoder
            if isinstance(enc, (str, Path)):
                enc = StateEncoder.from_pretrained(enc)
            if not isinstance(enc, StateEncoder) or not hasattr(enc, "torso_"):
                raise AnytaskError("linear_q needs encoder=: a fitted state encoder (ENCODERS) or its saved folder")
            self.encoder_ = enc
        return self.encoder_

    def _check_env(self, env_id: str) -> None:
        enc = self._encoder()
        if tuple(enc.obs_shape_) != tuple(self.obs_shape_):
            raise AnytaskError(f"the encoder was trained on observations {tuple(enc.obs_shape_)} of {enc.env_id_}; "
                               f"{env_id} gives {tuple(self.obs_shape_)}. Train an encoder on {env_id}")
        if enc.env_id_ != env_id:
            import logging

            logging.getLogger("anytask.control").warning(
                "the encoder was trained on %s and is reused on %s (same observation shape)", enc.env_id_, env_id)

    def _identity(self) -> str:
        return _encoder_hash(self._encoder())

    def _x(self, obs: np.ndarray) -> torch.Tensor:
        return self._encoder().features(obs_tensor(obs))

    def _net(self) -> nn.Module:
        return nn.Linear(int(self._encoder().width), int(self.n_actions_))

    def _get_state(self):
        extra, tensors = super()._get_state()
        e_extra, e_tensors = self._encoder()._get_state()
        extra["encoder"] = {"class": f"{type(self.encoder_).__module__}:{type(self.encoder_).__qualname__}",
                            "params": self.encoder_.get_params(deep=False), "extra": e_extra}
        tensors.update({f"encoder.{k}": v for k, v in e_tensors.items()})
        return extra, tensors

    def _restore(self, extra, tensors) -> None:
        from anytask.core.io import resolve_class

        spec = extra["encoder"]
        cls = resolve_class(spec["class"])
        self.encoder_ = cls._from_state(spec["params"], spec["extra"],
                                        {k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})


@LEARNERS.register("dqn", reference="Mnih et al. 2015, https://www.nature.com/articles/nature14236; "
                   "van Hasselt et al. 2016 (double)", saveable=True, input="environments", output="actions")
class DQN(QLearner):
    """Double DQN from scratch: the same torso as the encoders plus a linear head, all trained on the reward."""

    def __init__(self, width=256, steps=COMMON["steps"], gamma=COMMON["gamma"], n_step=COMMON["n_step"],
                 lr=COMMON["lr"], batch_size=COMMON["batch_size"], buffer_size=COMMON["buffer_size"],
                 learning_starts=COMMON["learning_starts"], train_every=COMMON["train_every"],
                 target_update=COMMON["target_update"], eps_start=COMMON["eps_start"], eps_end=COMMON["eps_end"],
                 eps_fraction=COMMON["eps_fraction"], grad_clip=COMMON["grad_clip"], seed=COMMON["seed"],
                 progress=COMMON["progress"], checkpoint_dir=COMMON["checkpoint_dir"],
                 checkpoint_every=COMMON["checkpoint_every"]):
        store_params(self, locals())

    def _x(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs))  # frames kept as uint8 in the replay

    def _torso_in(self, x: torch.Tensor) -> torch.Tensor:
        return obs_tensor(x)

    def _net(self) -> nn.Module:
        return nn.Sequential(Torso(self.obs_shape_, int(self.width)), nn.Linear(int(self.width), int(self.n_actions_)))
