"""``anytask/ObjectNav-v0``: object-goal navigation in a grid room with egocentric RGB views (the small stand-in for
ProcTHOR's ObjectNav in the Embodied Codebook paper, card 33).

A ``size`` x ``size`` room (walls around it and a few inner wall cells) holds ``n_objects`` objects, each of one of
``n_types`` colours; the goal is one object type (an index), present at least once. The agent has a cell and a
heading (N, E, S, W). Actions: 0 MoveAhead, 1 RotateLeft, 2 RotateRight, 3 End. The episode succeeds when the agent
calls End within Manhattan distance 1 of an object of the goal type; End anywhere else fails; ``max_steps`` ends it
too (truncation). Reward (the card's): -0.01 per step, +10 on success, plus the decrease of the shortest-path
distance to the nearest goal object (shaping x 1.0).

Observation: ``{"view": (3 * depth, 3 * width, 3) uint8, "goal": int}``; the view is the ``depth`` x ``width``
cells ahead of the agent (its own row at the bottom, centred), each drawn as a 3 x 3 block (floor black, wall
grey, objects in their colour, cells behind walls hidden), rotated so "ahead" is up. ``info`` holds what the
benchmark probes and the metrics need: ``distance`` (shortest path to the goal), ``goal_visible``, ``visible_types``
(per type, whether it is in view), and at reset ``shortest`` (the optimal episode length).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from anytask.core.errors import AnytaskError

COLOURS = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], dtype=np.uint8)
WALL, FLOOR = np.array([128, 128, 128], np.uint8), np.array([0, 0, 0], np.uint8)
HEADINGS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])  # N, E, S, W as (row, col) steps
AHEAD, LEFT, RIGHT, END = 0, 1, 2, 3


def _make_env_class():
    import gymnasium as gym
    from gymnasium import spaces

    class ObjectNav(gym.Env):
        metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

        def __init__(self, size: int = 8, n_types: int = 5, n_objects: int = 6, depth: int = 5, width: int = 5,
                     max_steps: int = 60, inner_walls: int = 4, palette: int = 0, render_mode: str | None = None):
            if size < 4 or not 1 <= n_types <= len(COLOURS) or n_objects < 1 or width % 2 == 0 or depth < 1:
                raise AnytaskError("ObjectNav needs size >= 4, 1 <= n_types <= 10, n_objects >= 1, an odd view "
                                   "width and depth >= 1")
            self.size, self.n_types, self.n_objects, self.depth, self.width = size, n_types, n_objects, depth, width
            self.max_steps, self.inner_walls, self.render_mode = max_steps, inner_walls, render_mode
            # palette k rotates the colours: a new "texture" for transfer checks, same layout rules
            self.colours = np.roll(COLOURS, int(palette), axis=0)[:n_types]
            self.observation_space = spaces.Dict({
                "view": spaces.Box(0, 255, (3 * depth, 3 * width, 3), np.uint8),
                "goal": spaces.Discrete(n_types)})
            self.action_space = spaces.Discrete(4)

        # -- dynamics -------------------------------------------------------------------------------------------
        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            rng, n = self.np_random, self.size
            while True:
                grid = np.full((n + 2, n + 2), -2, np.int64)  # -2 wall, -1 floor, k >= 0 object type k
                grid[1:-1, 1:-1] = -1
                free = [(r, c) for r in range(1, n + 1) for c in range(1, n + 1)]
                order = rng.permutation(len(free))
                cells = [free[i] for i in order[:self.inner_walls + self.n_objects + 1]]
                for r, c in cells[:self.inner_walls]:
                    grid[r, c] = -2
                types = rng.integers(self.n_types, size=self.n_objects)
                for (r, c), k in zip(cells[self.inner_walls:-1], types):
                    grid[r, c] = k
                self.grid, self.pos = grid, np.array(cells[-1])
                self.goal = int(rng.choice(types))
                self.dist_map = self._distances()
                if np.isfinite(self.dist_map[tuple(self.pos)]):
                    break
            self.heading, self.t = int(rng.integers(4)), 0
            info = self._info()
            info["shortest"] = self.shortest_length()
            return self._obs(), info

        def _distances(self) -> np.ndarray:
            """Shortest-path steps from every floor cell to a cell next to a goal object (BFS)."""
            d = np.full(self.grid.shape, np.inf)
            q = deque()
            for r, c in zip(*np.nonzero(self.grid == self.goal)):
                for dr, dc in HEADINGS:
                    if self.grid[r + dr, c + dc] == -1 and d[r + dr, c + dc] == np.inf:
                        d[r + dr, c + dc] = 0
                        q.append((r + dr, c + dc))
            while q:
                r, c = q.popleft()
                for dr, dc in HEADINGS:
                    if self.grid[r + dr, c + dc] == -1 and d[r + dr, c + dc] == np.inf:
                        d[r + dr, c + dc] = d[r, c] + 1
                        q.append((r + dr, c + dc))
            return d

        def step(self, action):
            if not self.action_space.contains(action):
                raise AnytaskError(f"action {action!r} is outside ObjectNav's actions 0-3 (MoveAhead, RotateLeft, "
                                   "RotateRight, End)")
            self.t += 1
            before = self.dist_map[tuple(self.pos)]
            reward, terminated, success = -0.01, False, False
            if action == AHEAD:
                nxt = self.pos + HEADINGS[self.heading]
                if self.grid[tuple(nxt)] == -1:
                    self.pos = nxt
            elif action == LEFT:
                self.heading = (self.heading - 1) % 4
            elif action == RIGHT:
                self.heading = (self.heading + 1) % 4
            else:
                terminated, success = True, bool(self.dist_map[tuple(self.pos)] == 0)
                reward += 10.0 if success else 0.0
            reward += float(before - self.dist_map[tuple(self.pos)])
            info = self._info()
            info["success"] = success
            return self._obs(), reward, terminated, self.t >= self.max_steps and not terminated, info

        # -- views ----------------------------------------------------------------------------------------------
        def _window(self) -> np.ndarray:
            """Cell contents ``(depth, width)`` ahead of the agent, ahead = up; -3 where a wall hides the cell."""
            fwd, right = HEADINGS[self.heading], HEADINGS[(self.heading + 1) % 4]
            half, out = self.width // 2, np.full((self.depth, self.width), -3, np.int64)
            for i in range(self.depth):
                for j in range(-half, half + 1):
                    r, c = self.pos + i * fwd + j * right
                    if 0 <= r < self.grid.shape[0] and 0 <= c < self.grid.shape[1]:
                        out[self.depth - 1 - i, j + half] = self.grid[r, c]
            for j in range(self.width):  # a wall hides what lies behind it in its column
                for i in range(self.depth - 2, -1, -1):
                    if out[i + 1, j] in (-2, -3):
                        out[i, j] = -3
            return out

        def _obs(self) -> dict:
            win = self._window()
            img = np.zeros((self.depth, self.width, 3), np.uint8)
            img[win == -2] = WALL
            img[win == -1] = FLOOR
            for k in range(self.n_types):
                img[win == k] = self.colours[k]
            img[win == -3] = WALL // 2
            return {"view": np.repeat(np.repeat(img, 3, 0), 3, 1), "goal": self.goal}

        def _info(self) -> dict:
            win = self._window()
            return {"distance": float(self.dist_map[tuple(self.pos)]), "goal_visible": bool((win == self.goal).any()),
                    "visible_types": [bool((win == k).any()) for k in range(self.n_types)]}

        def shortest_length(self) -> int:
            """Optimal number of actions to succeed from the current state (turns, moves and End), by BFS."""
            start = (int(self.pos[0]), int(self.pos[1]), self.heading)
            seen, q = {start}, deque([(start, 0)])
            while q:
                (r, c, h), k = q.popleft()
                if self.dist_map[r, c] == 0:
                    return k + 1
                for nr, nc, nh in ((r + HEADINGS[h][0], c + HEADINGS[h][1], h), (r, c, (h - 1) % 4),
                                   (r, c, (h + 1) % 4)):
                    if self.grid[nr, nc] != -1:
                        nr, nc = r, c
                    if (nr, nc, nh) not in seen:
                        seen.add((nr, nc, nh))
                        q.append(((nr, nc, nh), k + 1))
            return self.max_steps

        def expert_action(self) -> int:
            """A shortest-path expert's action: End when next to a goal object, else the first action of an
            optimal (turn, move) plan."""
            if self.dist_map[tuple(self.pos)] == 0:
                return END
            start = (int(self.pos[0]), int(self.pos[1]), self.heading)
            seen, q = {start: None}, deque([start])
            while q:
                r, c, h = q.popleft()
                if self.dist_map[r, c] == 0:
                    state = (r, c, h)
                    while seen[state][0] != start:
                        state = seen[state][0]
                    return seen[state][1]
                for a, (nr, nc, nh) in ((AHEAD, (r + HEADINGS[h][0], c + HEADINGS[h][1], h)),
                                        (LEFT, (r, c, (h - 1) % 4)), (RIGHT, (r, c, (h + 1) % 4))):
                    if self.grid[nr, nc] != -1:
                        continue
                    if (nr, nc, nh) not in seen:
                        seen[(nr, nc, nh)] = ((r, c, h), a)
                        q.append((nr, nc, nh))
            return END

        def render(self):
            img = np.zeros((*self.grid.shape, 3), np.uint8)
            img[self.grid == -2] = WALL
            for k in range(self.n_types):
                img[self.grid == k] = self.colours[k]
            img[tuple(self.pos)] = [255, 255, 255]
            return np.repeat(np.repeat(img, 4, 0), 4, 1)

    return ObjectNav


_CLASS = None


def object_nav_class():
    """The ``ObjectNav`` Gymnasium class (built on first use, so importing anytask does not import gymnasium)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _make_env_class()
    return _CLASS


def make_object_nav(**kwargs):
    """Gymnasium's entry point for ``anytask/ObjectNav-v0``."""
    return object_nav_class()(**kwargs)
