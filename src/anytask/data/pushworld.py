"""``anytask/Push-v0``: push a disc to a goal on a table, with a body that can be swapped (the 2-D stand-in for the
manipulation tasks of Ag2Manip, card 08, and RL-100, card 15).

The table is the unit square, seen from above. An object (a disc of radius ``R_OBJ``) must be pushed until its
centre is within ``R_GOAL`` of the goal. The agent pushes with its tip, a disc of radius ``R_TIP``; when the tip
would overlap the object, the object is moved out along the contact normal (a kinematic push, no friction or
rotation). What differs between bodies is how actions move the tip and what the agent looks like:

- ``"disc"`` and ``"L"``: the tip is a floating end-effector, the action moves it by ``STEP * a`` (``a`` in
  [-1, 1]^2). The disc is drawn as the tip alone; the L-shaped pusher adds two bars above and to the right of it.
- ``"arm"``: a planar 2-link arm (links ``LINK`` long, base below the table at ``BASE``); the action changes the
  two joint angles by ``JOINT_STEP * a`` and the tip is the arm's end. Its links are drawn; only the tip touches the
  object (the links pass above it).

Physics are the same for every body: the same tip path gives the same object path, so one object trajectory can be
rendered with any body (``PushSim.render(body=...)``), which is what the agent-agnostic check needs.

Observations: ``"state"`` = float32 ``[tip xy, object xy, goal xy]`` (+ the two joint angles for the arm), or
``"pixels"`` = a 32 x 32 RGB frame (background black, object red, drawn over the agent; the goal is not drawn — a
goal is given as a goal frame), or ``"masked"`` = the same frame with exactly the agent's pixels set to the
background (Ag2Manip's agent-agnostic view; the background is uniform, so the mask leaves no visible hole).
Reward: the decrease of the object's distance to the goal, +1 on success (which ends the episode); ``max_steps``
truncates. ``info``: ``success``, ``distance``, ``tip``, ``object``.

``PushSim`` is the batched numpy simulator under the Gymnasium class (the learners of the family step hundreds of
worlds at once through it); ``scripted_push`` is the demonstrator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.data.envs import Transitions

R_OBJ, R_TIP, R_GOAL = 0.08, 0.04, 0.08
STEP, JOINT_STEP = 0.04, 0.15
BASE, LINK = np.array([0.5, -0.1]), 0.6
SIZE = 32
BODIES = ("disc", "L", "arm")
OBS_KINDS = ("state", "pixels", "masked")
COLOURS = {"object": (220, 40, 40), "disc": (40, 90, 230), "L": (230, 200, 40), "arm": (170, 170, 170)}
_PIX = (np.arange(SIZE) + 0.5) / SIZE


@dataclass
class Videos(Transitions):
    """Transitions whose rows also carry their ``episode`` and ``step`` (what VIP's objective samples from)."""

    episode: np.ndarray | None = None
    step: np.ndarray | None = None


def check_body(body: str) -> str:
    if body not in BODIES:
        raise AnytaskError(f"body {body!r} is not one of {BODIES}")
    return body


def forward_kinematics(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and tip positions ``(B, 2)`` of the arm for joint angles ``theta`` ``(B, 2)``."""
    a1, a2 = theta[:, 0], theta[:, 0] + theta[:, 1]
    elbow = BASE + LINK * np.stack([np.cos(a1), np.sin(a1)], 1)
    return elbow, elbow + LINK * np.stack([np.cos(a2), np.sin(a2)], 1)


def inverse_kinematics(tip: np.ndarray, elbow_up: bool = True) -> np.ndarray:
    """Joint angles ``(B, 2)`` that put the arm's tip at ``tip`` ``(B, 2)`` (clipped to the reachable annulus)."""
    d = np.asarray(tip, float) - BASE
    r = np.clip(np.linalg.norm(d, axis=1), 1e-6, 2 * LINK - 1e-6)
    c2 = np.clip((r ** 2 - 2 * LINK ** 2) / (2 * LINK ** 2), -1.0, 1.0)
    t2 = np.arccos(c2) * (-1 if elbow_up else 1)
    t1 = np.arctan2(d[:, 1], d[:, 0]) - np.arctan2(LINK * np.sin(t2), LINK + LINK * np.cos(t2))
    return np.stack([t1, t2], 1)


def retarget(theta: np.ndarray, tip_action: np.ndarray) -> np.ndarray:
    """Joint actions (in [-1, 1], units of ``JOINT_STEP``) that move the arm's tip by ``STEP * tip_action``
    (Ag2Manip's retargeting of proxy actions to a specific robot): inverse kinematics of the target tip on the arm's
    current elbow branch; where the joints would have to move more than one step, the move is scaled down."""
    theta = np.asarray(theta, float)
    tip = forward_kinematics(theta)[1] + STEP * np.clip(np.asarray(tip_action, float), -1, 1)
    up = theta[:, 1] <= 0
    target = np.where(up[:, None], inverse_kinematics(tip, True), inverse_kinematics(tip, False))
    dq = (target - theta + np.pi) % (2 * np.pi) - np.pi
    return dq / np.maximum(JOINT_STEP, np.abs(dq).max(1, keepdims=True))


def _seg_dist(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance of every pixel centre to the segments p0 -> p1 ``(B, 2)``: ``(B, SIZE, SIZE)`` (row = y from top)."""
    X, Y = np.meshgrid(_PIX, 1 - _PIX)
    P = np.stack([X, Y], -1)[None]  # (1, S, S, 2)
    d = (p1 - p0)[:, None, None]
    t = np.clip(((P - p0[:, None, None]) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(P - (p0[:, None, None] + t[..., None] * d), axis=-1)


class PushSim:
    """``B`` push worlds stepped together (numpy). ``reset(rng)`` draws starts; ``step(actions)`` moves them."""

    def __init__(self, n: int = 1, body: str = "disc", max_steps: int = 80):
        self.n, self.body, self.max_steps = int(n), check_body(body), int(max_steps)

    @property
    def action_dim(self) -> int:
        return 2

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        n = self.n
        self.goal = rng.uniform(0.15, 0.85, (n, 2))
        self.obj = rng.uniform(0.2, 0.8, (n, 2))
        near = np.linalg.norm(self.obj - self.goal, axis=1) < 0.25
        while near.any():  # the object starts at least 0.25 from its goal
            self.obj[near] = rng.uniform(0.2, 0.8, (int(near.sum()), 2))
            near = np.linalg.norm(self.obj - self.goal, axis=1) < 0.25
        tip = rng.uniform(0.1, 0.9, (n, 2))
        clash = np.linalg.norm(tip - self.obj, axis=1) < R_OBJ + R_TIP + 0.02
        tip[clash] = self.obj[clash] + np.array([0.0, -(R_OBJ + R_TIP + 0.03)])
        self.theta = inverse_kinematics(tip) if self.body == "arm" else np.zeros((n, 2))
        self.tip = forward_kinematics(self.theta)[1] if self.body == "arm" else tip
        self.t = np.zeros(n, int)
        self.done = np.zeros(n, bool)
        return self.state()

    def set(self, tip, obj, goal) -> None:
        """Place tip, object and goal ``(B, 2)`` by hand (the arm's joints by inverse kinematics)."""
        self.obj, self.goal = np.array(obj, float), np.array(goal, float)
        self.theta = inverse_kinematics(tip) if self.body == "arm" else np.zeros((self.n, 2))
        self.tip = forward_kinematics(self.theta)[1] if self.body == "arm" else np.array(tip, float)
        self.t, self.done = np.zeros(self.n, int), np.zeros(self.n, bool)

    def distance(self) -> np.ndarray:
        return np.linalg.norm(self.obj - self.goal, axis=1)

    def state(self) -> np.ndarray:
        s = [self.tip, self.obj, self.goal] + ([self.theta] if self.body == "arm" else [])
        return np.concatenate(s, 1).astype(np.float32)

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Apply ``actions`` ``(B, 2)`` (clipped to [-1, 1]) to the worlds not done; returns ``(state, reward,
        success, done)``. Finished worlds stay frozen."""
        a = np.clip(np.nan_to_num(np.asarray(actions, float)), -1, 1)
        live = ~self.done
        before = self.distance()
        if self.body == "arm":
            theta = self.theta + JOINT_STEP * a
            tip = forward_kinematics(theta)[1]
            ok = live & (tip >= 0).all(1) & (tip <= 1).all(1)  # the arm stops at the table's edge
            self.theta[ok] = theta[ok]
            self.tip[ok] = tip[ok]
        else:
            self.tip[live] = np.clip(self.tip[live] + STEP * a[live], 0, 1)
        gap = self.obj - self.tip
        dist = np.linalg.norm(gap, axis=1)
        hit = live & (dist < R_OBJ + R_TIP)
        normal = gap[hit] / np.maximum(dist[hit], 1e-9)[:, None]
        self.obj[hit] = np.clip(self.tip[hit] + normal * (R_OBJ + R_TIP), R_OBJ, 1 - R_OBJ)
        after = self.distance()
        success = live & (after < R_GOAL)
        reward = np.where(live, before - after + success, 0.0)
        self.t[live] += 1
        self.done = self.done | success | (self.t >= self.max_steps)
        return self.state(), reward, success, self.done

    def render(self, body: str | None = None, masked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(B, 32, 32, 3)`` uint8 and the agent's pixel mask ``(B, 32, 32)`` (agent pixels not under the
        object). ``body`` draws the same scene with another body (the tip where it is); ``masked`` blanks the agent."""
        body = check_body(body or self.body)
        n = self.n
        agent = _seg_dist(self.tip, self.tip) < R_TIP
        if body == "L":
            up, right = self.tip + [0.0, 0.18], self.tip + [0.14, 0.18]
            agent |= (_seg_dist(self.tip, up) < 0.025) | (_seg_dist(up, right) < 0.025)
        elif body == "arm":
            theta = self.theta if self.body == "arm" else inverse_kinematics(self.tip)
            elbow, tip = forward_kinematics(theta)
            agent |= (_seg_dist(np.repeat(BASE[None], n, 0), elbow) < 0.02) | (_seg_dist(elbow, tip) < 0.02)
        obj = _seg_dist(self.obj, self.obj) < R_OBJ
        agent &= ~obj
        frame = np.zeros((n, SIZE, SIZE, 3), np.uint8)
        if not masked:
            frame[agent] = COLOURS[body]
        frame[obj] = COLOURS["object"]
        return frame, agent

    def goal_frames(self) -> np.ndarray:
        """What success looks like: the object at the goal, no agent (the goal images of a goal-distance reward)."""
        obj = _seg_dist(self.goal, self.goal) < R_OBJ
        frame = np.zeros((self.n, SIZE, SIZE, 3), np.uint8)
        frame[obj] = COLOURS["object"]
        return frame


def contact_push(tip, obj, direction) -> np.ndarray:
    """Tip actions ``(B, 2)`` that push the object along ``direction`` ``(B, 2)``: go behind the object (around it when
    on the wrong side), then push. The interaction-level primitive of Ag2Manip's agent proxy and of the demonstrator."""
    tip, obj = np.asarray(tip, float), np.asarray(obj, float)
    u = np.asarray(direction, float)
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
    behind = obj - u * (R_OBJ + R_TIP + 0.01)
    rel = tip - obj
    ahead = (rel * u).sum(1) > -(R_OBJ + R_TIP) * 0.5
    side = np.stack([-u[:, 1], u[:, 0]], 1)
    side *= np.sign((rel * side).sum(1, keepdims=True) + 1e-9)
    target = np.where(ahead[:, None], obj + side * (R_OBJ + R_TIP + 0.04) - u * 0.1, behind)
    close = np.linalg.norm(tip - behind, axis=1) < 0.02
    target = np.where(close[:, None], obj + u * 0.1, target)
    a = (target - tip) / STEP
    return a / np.maximum(1.0, np.abs(a).max(1, keepdims=True))


def scripted_push(sim: PushSim, noise: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Tip actions ``(B, 2)`` of the scripted demonstrator: ``contact_push`` towards the goal, plus Gaussian noise of
    scale ``noise``."""
    a = contact_push(sim.tip, sim.obj, sim.goal - sim.obj)
    if noise > 0:
        a = a + (rng or np.random.default_rng()).normal(0, noise, a.shape)
    return np.clip(a, -1, 1)


def push_videos(episodes: int, *, body: str = "disc", obs: str = "masked", noise: float = 0.5, seed: int = 0,
                max_steps: int = 60):
    """Scripted pushing episodes as ``Videos`` (``anytask.data.envs.Transitions`` of frames plus each row's episode
    and step; ``obs`` "pixels" or "masked"): the videos a visual representation learns from. Also returns the world
    state ``[tip, object, goal]`` of every row, so the same rows can be drawn with another body (``render_states``).
    The frame after an episode's last row (its ``next_obs``) ends it."""
    if obs not in ("pixels", "masked"):
        raise AnytaskError(f"obs {obs!r}: videos are frames, 'pixels' or 'masked'")
    rng = np.random.default_rng(seed)
    sim = PushSim(int(episodes), body, max_steps)
    sim.reset(rng)
    O, O2, S, A, R, T, E, K = [], [], [], [], [], [], [], []
    frame = sim.render(masked=obs == "masked")[0]
    while not sim.done.all():
        live, state, t = ~sim.done, sim.state()[:, :6], sim.t.copy()
        a = scripted_push(sim, noise, rng)
        _, r, success, _ = sim.step(retarget(sim.theta, a) if body == "arm" else a)
        nxt = sim.render(masked=obs == "masked")[0]
        O.append(frame[live]), O2.append(nxt[live]), S.append(state[live]), A.append(a[live])
        R.append(r[live]), T.append(success[live]), E.append(np.nonzero(live)[0]), K.append(t[live])
        frame = nxt
    data = Videos("anytask/Push-v0", np.concatenate(O), np.zeros(sum(map(len, A)), np.int64),
                  np.concatenate(R).astype(np.float32), np.concatenate(O2), np.concatenate(T),
                  np.zeros(0, np.float32), 0, np.concatenate(E), np.concatenate(K))
    return data, np.concatenate(S)


def render_states(states, body: str, masked: bool = False) -> np.ndarray:
    """Frames of world states ``[tip, object, goal]`` ``(N, 6)`` drawn with ``body``."""
    states = np.asarray(states, float)
    sim = PushSim(len(states), body)
    sim.set(states[:, 0:2], states[:, 2:4], states[:, 4:6])
    return sim.render(masked=masked)[0]


def _make_env_class():
    import gymnasium as gym
    from gymnasium import spaces

    class Push(gym.Env):
        metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

        def __init__(self, body: str = "disc", obs: str = "state", max_steps: int = 80,
                     render_mode: str | None = None):
            if obs not in OBS_KINDS:
                raise AnytaskError(f"obs {obs!r} is not one of {OBS_KINDS}")
            if int(max_steps) < 1:
                raise AnytaskError(f"max_steps={max_steps!r}: must be a positive integer")
            self.sim, self.obs_kind, self.render_mode = PushSim(1, body, max_steps), obs, render_mode
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
            if obs == "state":
                dim = 8 if body == "arm" else 6
                self.observation_space = spaces.Box(-10.0, 10.0, (dim,), np.float32)
            else:
                self.observation_space = spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)

        def _obs(self):
            if self.obs_kind == "state":
                return self.sim.state()[0]
            return self.sim.render(masked=self.obs_kind == "masked")[0][0]

        def _info(self, success=False):
            return {"success": bool(success), "distance": float(self.sim.distance()[0]),
                    "tip": self.sim.tip[0].copy(), "object": self.sim.obj[0].copy()}

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.sim.reset(self.np_random)
            return self._obs(), self._info()

        def step(self, action):
            a = np.asarray(action, np.float32).reshape(-1)
            if a.shape != (2,) or not np.isfinite(a).all():
                raise AnytaskError(f"action {action!r}: Push-v0 takes two finite numbers in [-1, 1]")
            _, r, success, done = self.sim.step(a[None])
            truncated = bool(done[0] and not success[0])
            return self._obs(), float(r[0]), bool(success[0]), truncated, self._info(success[0])

        def render(self):
            return self.sim.render()[0][0]

    return Push


_CLASS = None


def push_class():
    """The ``Push`` Gymnasium class (built on first use, so importing anytask does not import gymnasium)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_env_class()
    return _CLASS


def make_push(**kwargs):
    """Gymnasium's entry point for ``anytask/Push-v0``."""
    return push_class()(**kwargs)
