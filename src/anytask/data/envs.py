"""Environments for the control family, through Gymnasium's standard API (``gymnasium.make``), and offline
transitions collected from them.

``make_env("MinAtar/Breakout-v1", seed=0)`` makes any registered Gymnasium environment; MinAtar's five games
(``MinAtar/{Asterix,Breakout,Freeway,Seaquest,SpaceInvaders}-v0/-v1``; v1 has the minimal action set) and the
project's own (``anytask/ObjectNav-v0``, ``anytask.data.gridnav``; ``anytask/Push-v0``, ``anytask.data.pushworld``) are registered on first use. An id that is
not registered is a clear error naming the close ones.

``collect(env_id, n, seed=0)`` runs a behaviour policy (uniform random by default, as the stand-in for the
DQN-Replay data Proto-Value Networks learn from) and returns ``Transitions``: ``obs`` / ``next_obs`` as uint8
arrays of the environment's observation shape, ``action`` (of ``n_actions``), ``reward``, ``terminal`` (the
episode ended in a terminal state: no bootstrap) and ``episode_returns`` of every finished episode.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.extras import require

PROJECT_ENVS = {"anytask/ObjectNav-v0": "anytask.data.gridnav:make_object_nav",
                "anytask/Push-v0": "anytask.data.pushworld:make_push"}  # the project's own environments
MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


def gym():
    """The ``gymnasium`` module, with MinAtar's games registered when ``minatar`` is installed."""
    gymnasium = require("gymnasium", "control", "the control family")
    for env_id, entry in PROJECT_ENVS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry)
    if "MinAtar/Breakout-v1" not in gymnasium.registry:
        try:
            from minatar.gym import register_envs
        except ImportError:
            pass
        else:
            register_envs()
    return gymnasium


def make_env(env_id: str, *, seed: int | None = None, **kwargs):
    """``gymnasium.make(env_id, **kwargs)``, reset with ``seed`` when one is given."""
    gymnasium = gym()
    if env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        extra = "" if "MinAtar/Breakout-v1" in gymnasium.registry else \
            " (MinAtar's games need the package 'minatar': pip install 'anytask[control]')"
        raise AnytaskError(f"no Gymnasium environment {env_id!r} is registered.{hint}{extra} Register your own "
                           f"with gymnasium.register(id=..., entry_point=...)")
    env = gymnasium.make(env_id, **kwargs)
    if seed is not None:
        env.reset(seed=int(seed))
        env.action_space.seed(int(seed))
    return env


def check_discrete(env, what: str) -> int:
    """The number of actions of ``env``, or an error when its action space is not discrete."""
    space = env.action_space
    if not hasattr(space, "n"):
        raise AnytaskError(f"{what} needs a discrete action space; {env.spec.id if env.spec else env} has "
                           f"{type(space).__name__}")
    return int(space.n)


def as_uint8(obs) -> np.ndarray:
    """An observation as compact uint8 (MinAtar's bool planes, pixel frames) or float32 (vector states)."""
    obs = np.asarray(obs)
    if obs.dtype == bool or obs.dtype == np.uint8:
        return obs.astype(np.uint8, copy=False)
    return obs.astype(np.float32, copy=False)


@dataclass
class Transitions:
    """Offline data: ``N`` transitions ``(obs, action, reward, next_obs, terminal)`` from ``env_id``."""

    env_id: str
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminal: np.ndarray
    episode_returns: np.ndarray
    n_actions: int

    def __len__(self) -> int:
        return len(self.action)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.obs.shape[1:])


def collect(env_id: str, n: int, *, seed: int = 0, policy=None, progress: bool = False) -> Transitions:
    """``n`` transitions of ``policy(obs, rng) -> action`` (uniform random when None) in ``env_id``."""
    if int(n) < 1:
        raise AnytaskError(f"n={n!r}: collect at least one transition")
    env = make_env(env_id)
    n_actions = check_discrete(env, "collecting transitions")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=int(seed))
    obs = as_uint8(obs)
    O = np.empty((n, *obs.shape), obs.dtype)
    O2 = np.empty_like(O)
    A = np.empty(n, np.int64)
    R = np.empty(n, np.float32)
    T = np.empty(n, bool)
    returns, ret = [], 0.0
    for i in tqdm(range(n), desc=f"collect {env_id}", disable=not progress, leave=False):
        a = int(rng.integers(n_actions)) if policy is None else int(policy(obs, rng))
        nxt, r, term, trunc, _ = env.step(a)
        nxt = as_uint8(nxt)
        O[i], A[i], R[i], O2[i], T[i] = obs, a, r, nxt, term
        ret += float(r)
        if term or trunc:
            returns.append(ret)
            ret = 0.0
            nxt, _ = env.reset()
            nxt = as_uint8(nxt)
        obs = nxt
    env.close()
    return Transitions(env_id, O, A, R, O2, T, np.asarray(returns, np.float32), n_actions)
