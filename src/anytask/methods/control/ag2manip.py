"""Ag2Manip (Li et al. 2024, https://arxiv.org/abs/2404.17521; card 08): learn a manipulation skill for a robot from
an agent-agnostic visual reward and an agent-agnostic action space, on the push world (``anytask/Push-v0``).

- **Visual representation**: a frozen encoder (``time_contrastive`` trained on agent-masked "human" videos, another
  body's) gives the reward ``-||phi(o_t) - phi(o_goal)||`` on frames with the agent masked out (``view="masked"``)
  or visible (``view="pixels"``, the ablation); ``encoder=None`` uses the true object-goal distance (an oracle).
- **Action representation**: ``action="proxy"`` learns in the space of an agent proxy, a floating end-effector (the
  disc body) whose actions are interaction-level: the policy picks the direction to push the object in and the
  proxy's primitive (``anytask.data.pushworld.contact_push``: get behind the object, push) moves the tip; every tip
  move is retargeted to the robot by inverse kinematics (``retarget``). ``"native"`` learns the robot's joint
  actions directly from the same state features (the ablation).
- **Learner**: the cross-entropy method over a small MLP policy (state features -> tanh actions), ``iterations``
  rounds of ``population`` candidates, each scored on ``episodes`` starts by the mean reward read every
  ``reward_every`` steps (the same budget for every variant). The paper's RL algorithm is not verified (card); CEM
  is the card's small-scale choice.

``evaluate`` runs the robot body and counts true successes; no variant sees the true reward unless it is the oracle.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.methods.control.rl100 import MANIPULATION, push_features, push_sim


def _net(d_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, 2), nn.Tanh())


@MANIPULATION.register("ag2manip", reference="Li et al. 2024, https://arxiv.org/abs/2404.17521", saveable=True,
                       input="environments", output="actions")
class Ag2Manip(BaseEstimator, Pretrained):
    """A robot pushing policy learned from a frozen visual goal reward, in proxy or native action space."""

    def __init__(self, encoder=None, view: str = "masked", action: str = "proxy", hidden: int = 16,
                 iterations: int = 30, population: int = 32, elite: int = 6, episodes: int = 4, reward_every: int = 5,
                 init_std: float = 0.5, seed: int = 0, progress: bool = False):
        self.encoder, self.view, self.action, self.hidden = encoder, view, action, hidden
        self.iterations, self.population, self.elite, self.episodes = iterations, population, elite, episodes
        self.reward_every, self.init_std, self.seed, self.progress = reward_every, init_std, seed, progress

    def _check_params(self) -> None:
        if self.view not in ("masked", "pixels"):
            raise AnytaskError(f"view={self.view!r}: use 'masked' (agent-agnostic) or 'pixels'")
        if self.action not in ("proxy", "native"):
            raise AnytaskError(f"action={self.action!r}: use 'proxy' (end-effector, retargeted) or 'native'")
        for name in ("hidden", "iterations", "population", "elite", "episodes", "reward_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        if self.elite > self.population:
            raise AnytaskError(f"elite={self.elite} exceeds population={self.population}")
        if self.encoder is not None:
            check_is_fitted(self.encoder, "torso_")
            if tuple(self.encoder.obs_shape_) != (32, 32, 3):
                raise AnytaskError(f"the encoder was trained on observations {tuple(self.encoder.obs_shape_)}; "
                                   "Ag2Manip's reward needs one trained on push-world frames (32, 32, 3)")

    # -- policy -------------------------------------------------------------------------------------------------
    def _inputs(self, state: np.ndarray, native: bool) -> torch.Tensor:
        s = torch.from_numpy(np.asarray(state, np.float32))
        f = push_features(s[:, :6])
        return torch.cat([f, torch.sin(s[:, 6:]), torch.cos(s[:, 6:])], 1) if native else f

    def _n_inputs(self, native: bool) -> int:
        return 10 + (4 if native else 0)

    def _set(self, net: nn.Module, flat: np.ndarray) -> None:
        nn.utils.vector_to_parameters(torch.as_tensor(flat, dtype=torch.float32), net.parameters())

    def _act(self, nets: list[nn.Module], state: np.ndarray, native: bool, group: int) -> np.ndarray:
        """Actions of the body being trained: joint actions (native) or the proxy's tip moves."""
        x = self._inputs(state, native)
        with torch.no_grad():
            out = np.concatenate([net(x[i * group:(i + 1) * group]).numpy() for i, net in enumerate(nets)])
        return out if native else self._tip_moves(state, out)

    @staticmethod
    def _tip_moves(state: np.ndarray, direction: np.ndarray) -> np.ndarray:
        from anytask.data.pushworld import contact_push

        return contact_push(state[:, 0:2], state[:, 2:4], direction)

    # -- fit ----------------------------------------------------------------------------------------------------
    def fit(self, env_id: str = "anytask/Push-v0", y=None, body: str = "arm", max_steps: int = 60):
        """Learn to push with the robot ``body`` under the frozen reward (see the module)."""
        from tqdm.auto import tqdm

        self._check_params()
        push_sim(env_id, 1, body=body)
        self.env_id_, self.env_kwargs_ = env_id, {"body": body, "max_steps": int(max_steps)}
        native = self.action == "native"
        train_body = body if native else "disc"  # the proxy is a floating end-effector
        rng = np.random.default_rng(int(self.seed))
        torch.manual_seed(int(self.seed))
        net = _net(self._n_inputs(native), int(self.hidden))
        dim = sum(p.numel() for p in net.parameters())
        mean, std = np.zeros(dim), np.full(dim, float(self.init_std))
        P, E = int(self.population), int(self.episodes)
        nets = [_net(self._n_inputs(native), int(self.hidden)) for _ in range(P)]
        self.history_ = []
        for it in tqdm(range(int(self.iterations)), desc="Ag2Manip CEM", disable=not self.progress, leave=False):
            cands = mean + std * rng.standard_normal((P, dim))
            cands[0] = mean
            for n, c in zip(nets, cands):
                self._set(n, c)
            sim = push_sim(env_id, P * E, body=train_body, max_steps=int(max_steps))
            starts = np.random.default_rng(int(self.seed) * 100_003 + it)  # the same E starts for every candidate
            sim.reset(starts)
            sim.set(*(np.tile(x[:E], (P, 1)) for x in (sim.tip, sim.obj, sim.goal)))  # E starts shared by all
            fitness = self._score(sim, nets, native, E)
            elite = np.argsort(-fitness)[:int(self.elite)]
            mean, std = cands[elite].mean(0), cands[elite].std(0) + 0.01
            self.history_.append({"iter": it, "fitness": float(fitness[elite].mean()),
                                  "success": float((sim.distance() < 0.08).mean())})
        self.net_ = _net(self._n_inputs(native), int(self.hidden))
        self._set(self.net_, mean)
        self.net_.eval()
        return self

    def _score(self, sim, nets, native: bool, E: int) -> np.ndarray:
        """Mean reward of each candidate's ``E`` episodes (rows grouped by candidate)."""
        total, count, step = np.zeros(sim.n), 0, 0
        goal = sim.goal_frames() if self.encoder is not None else None
        emb_goal = self.encoder.embed(goal) if goal is not None else None
        while not sim.done.all():  # done includes running out of steps
            a = self._act(nets, sim.state(), native, E)
            sim.step(a)
            step += 1
            if step % int(self.reward_every) == 0 or sim.done.all():
                total += self._reward(sim, emb_goal)
                count += 1
        return total.reshape(len(nets), E).mean(1) / max(count, 1)

    def _reward(self, sim, emb_goal) -> np.ndarray:
        if self.encoder is None:
            return -sim.distance()
        frames = sim.render(masked=self.view == "masked")[0]
        return -np.linalg.norm(self.encoder.embed(frames) - emb_goal, axis=1)

    # -- use ----------------------------------------------------------------------------------------------------
    def predict(self, states) -> np.ndarray:
        """The robot's actions ``(N, 2)`` for its states ``(N, 8)`` ([tip, object, goal, joint angles]): proxy
        actions retargeted to joint actions, or the native policy's joint actions."""
        check_is_fitted(self, "net_")
        s = np.asarray(states, np.float32)
        s = s[None] if s.ndim == 1 else s
        want = 8 if self.env_kwargs_["body"] == "arm" else 6
        if s.ndim != 2 or s.shape[1] != want:
            raise AnytaskError(f"this policy acts for the {self.env_kwargs_['body']!r} body, whose states have {want} "
                               f"numbers; got shape {np.asarray(states).shape}")
        if not np.isfinite(s).all():
            raise AnytaskError("states contain NaN or inf")
        native = self.action == "native"
        a = self._act([self.net_], s, native, len(s))
        if not native and self.env_kwargs_["body"] == "arm":
            from anytask.data.pushworld import retarget

            a = retarget(s[:, 6:8].astype(float), a)
        return a

    def evaluate(self, episodes: int = 200, *, seed: int = 2_000_000) -> dict:
        """True success rate and final object-goal distance of the robot over ``episodes`` fresh episodes."""
        check_is_fitted(self, "net_")
        sim = push_sim(self.env_id_, int(episodes), **self.env_kwargs_)
        sim.reset(np.random.default_rng(seed))
        while not sim.done.all():
            sim.step(self.predict(sim.state()))
        d = sim.distance()
        return {"success": float((d < 0.08).mean()), "final_distance": float(d.mean())}

    def _get_state(self):
        check_is_fitted(self, "net_")
        return {"env_id": self.env_id_, "env_kwargs": self.env_kwargs_, "history": self.history_}, \
            dict(self.net_.state_dict())

    def _saved_params(self) -> dict:  # the reward's encoder is needed to train, not to act: not saved
        return {k: v for k, v in self.get_params(deep=False).items() if k != "encoder"}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        m = cls(**{k: v for k, v in params.items() if k != "encoder"})
        m.env_id_, m.env_kwargs_, m.history_ = extra["env_id"], dict(extra["env_kwargs"]), extra["history"]
        m.net_ = _net(m._n_inputs(m.action == "native"), int(m.hidden))
        m.net_.load_state_dict(tensors)
        m.net_.eval()
        return m

    def _card_fields(self) -> dict:
        return {"input": f"{self.env_kwargs_['body']} states of the push world", "output": "robot actions (2 numbers)"}

