"""MAPLE: a GUI agent with a persistent finite-state machine of screens as its memory (Guo et al. 2025, card 17,
https://arxiv.org/abs/2505.23596).

The FSM is built while the agent acts: every observed screen is a state (description, elements), merged with a
known state when their element lists agree and their descriptions' embeddings (MiniLM by default) have cosine
>= ``threshold`` — a screen's status line changes on every visit, so exact matching would split it; every action
is a transition, counted. The agent uses it to

* **check conditions**: a sub-goal's pre-condition (the screen's description contains its ``where``) before its
  tap, its post-condition (the next description contains ``expect``) after; a state where a post-condition held
  becomes *stable*;
* **navigate** along known transitions to a known state that satisfies the next pre-condition, and explore
  untried actions first (nearest state with one, by known paths) when none is known;
* **recover**: a pop-up is closed, a dead click retried, and after an unexpected screen, when no known path leads
  on from there, it **rolls back**: one step towards the last stable state by a known path (blind ``back`` only
  when none is known), then plans again from where that step lands;
* **keep knowledge**: the FSM is saved as JSON (with the world's version; another version's file is refused) and
  loaded by the next run, which then needs fewer steps.

The planner is scripted (the task's sub-goals, in words); the actor — which element to tap when no known path
helps — is a ``TextLM``: ``actor_oracle()`` (word overlap between the sub-goal and each element, a pop-up closed by
its dismiss button) or SmolLM2 (``BackboneLM``) rating the elements. Ablations are parameters: ``fsm=False`` (a
reactive agent: it sees only the current screen, taps the sub-goal's element wherever it shows, checks nothing),
``checks=False`` (the FSM's paths and exploration, no pre/post-condition checks, so no recovery), ``persist=False``
(the FSM starts empty for every task).

    agent = AGENTS.get("maple")(seed=0).fit(all_tasks()[:8])      # runs the tasks, keeps what it learned
    agent.evaluate(all_tasks())                                     # success, recovery, action accuracy, steps
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, deque
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.data.appworld import WORLD_VERSION, AppWorld, Task
from anytask.methods.agents.base import AGENTS, RuleLM, TextLM

DISMISS = ("not now", "cancel", "close", "end call")


def _stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


def actor_oracle() -> RuleLM:
    """The scripted actor: an option scores its word overlap with the sub-goal (5-letter stems), ``home`` and
    ``back`` a little less than one shared word, a dismiss button on a pop-up more than any."""

    def rate(kind, prompt, questions, options):
        goal = re.search(r"Goal: (.*)\n", prompt).group(1)
        popup = "Pop-up" in prompt
        stems = _stems(goal)
        scores = []
        for o in options:
            if o in ("home", "back"):
                scores.append(0.3 if o == "home" else 0.1)
            elif popup and o.lower() in DISMISS:
                scores.append(5.0)
            else:
                scores.append(float(len(_stems(o) & stems)))
        return np.array([scores])

    return RuleLM(rate=rate, name="scripted actor")


def _minilm_embed() -> Callable[[Sequence[str]], np.ndarray]:
    from anytask.backbones import create_backbone
    from anytask.backbones.embedder import Embedder

    return Embedder(create_backbone("minilm"), use_cache=False).embed  # status lines never repeat: no disk cache


class FSM:
    """States (description, elements, unit embedding, stable) and counted transitions; JSON persistence."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], threshold: float = 0.85,
                 world: str = WORLD_VERSION) -> None:
        self.embed, self.threshold, self.world = embed, float(threshold), world
        self.descriptions: list[str] = []
        self.elements: list[list[str]] = []
        self.stable: list[bool] = []
        self.vectors = np.zeros((0, 0), np.float32)
        self.transitions: dict[int, dict[str, Counter]] = {}

    def __len__(self) -> int:
        return len(self.descriptions)

    def _vector(self, text: str) -> np.ndarray:
        v = np.asarray(self.embed([text]), np.float32)[0]
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def locate(self, obs: dict, vector: np.ndarray | None = None) -> int | None:
        """The known state this observation is (same elements, cosine >= threshold), or None."""
        same = [i for i, e in enumerate(self.elements) if e == list(obs["elements"])]
        if not same:
            return None
        sims = self.vectors[same] @ (self._vector(obs["screen"]) if vector is None else vector)
        best = int(np.argmax(sims))
        return same[best] if sims[best] >= self.threshold else None

    def add(self, obs: dict) -> int:
        v = self._vector(obs["screen"])
        found = self.locate(obs, v)
        if found is not None:
            return found
        self.vectors = v[None] if not len(self) else np.vstack([self.vectors, v[None]])
        self.descriptions.append(obs["screen"])
        self.elements.append(list(obs["elements"]))
        self.stable.append(False)
        return len(self) - 1

    def add_transition(self, src: int, action: str, dst: int) -> None:
        self.transitions.setdefault(src, {}).setdefault(action, Counter())[dst] += 1

    def next_state(self, src: int, action: str) -> int | None:
        """Where ``action`` most often led from ``src``, a move preferred over staying (a dead click stays)."""
        seen = self.transitions.get(src, {}).get(action)
        if not seen:
            return None
        moves = Counter({d: n for d, n in seen.items() if d != src})
        return (moves or seen).most_common(1)[0][0]

    def tried(self, src: int) -> set[str]:
        """Actions whose effect from ``src`` is known: they moved at least once or stayed twice (one that stayed
        once may have met a dead click and is worth another try)."""
        return {a for a, seen in self.transitions.get(src, {}).items()
                if any(d != src for d in seen) or sum(seen.values()) >= 2}

    def path(self, src: int, goal: Callable[[int], bool]) -> list[str] | None:
        """The shortest list of actions along known (most frequent) transitions from ``src`` to a state where
        ``goal(state)`` holds; ``[]`` when ``src`` is one, None when no known path reaches one. ``back`` is left
        out: where it leads depends on the history, not on the screen."""
        prev: dict[int, tuple[int, str] | None] = {src: None}
        queue = deque([src])
        while queue:
            s = queue.popleft()
            if goal(s):
                out = []
                while prev[s] is not None:
                    s, a = prev[s]
                    out.append(a)
                return out[::-1]
            for a in sorted(self.transitions.get(s, {})):
                if a == "back":
                    continue
                t = self.next_state(s, a)
                if t is not None and t not in prev:
                    prev[t] = (s, a)
                    queue.append(t)
        return None

    # -- persistence ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"world": self.world, "threshold": self.threshold, "descriptions": self.descriptions,
                "elements": self.elements, "stable": self.stable, "vectors": self.vectors.tolist(),
                "transitions": {str(s): {a: {str(d): n for d, n in c.items()} for a, c in acts.items()}
                                for s, acts in self.transitions.items()}}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the FSM as JSON, atomically (a crash leaves the old file or the new one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, d: dict, embed: Callable, world: str = WORLD_VERSION) -> "FSM":
        if d.get("world") != world:
            raise AnytaskError(f"this FSM was built in world {d.get('world')!r}, not {world!r}: its screens and "
                               "transitions do not describe this world; start an empty FSM (persist=False) or "
                               "delete the file")
        fsm = cls(embed, d["threshold"], world)
        fsm.descriptions, fsm.elements, fsm.stable = list(d["descriptions"]), d["elements"], d["stable"]
        fsm.vectors = np.asarray(d["vectors"], np.float32).reshape(len(fsm.descriptions), -1)
        fsm.transitions = {int(s): {a: Counter({int(k): n for k, n in c.items()}) for a, c in acts.items()}
                           for s, acts in d["transitions"].items()}
        return fsm

    @classmethod
    def load(cls, path: str | os.PathLike, embed: Callable, world: str = WORLD_VERSION) -> "FSM":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise AnytaskError(f"cannot read the FSM at {path} ({type(e).__name__}); delete it to start "
                               "empty") from None
        return cls.from_dict(d, embed, world)


@AGENTS.register("maple", reference="Guo et al. 2025, MAPLE, https://arxiv.org/abs/2505.23596",
                 input="environments", output="episodes", saveable=True, embeds_text=True,
                 summary="GUI agent with a persistent FSM memory of screens: pre/post-condition checks, rollback to "
                         "the last stable state, knowledge kept across runs")
class MapleAgent(BaseEstimator, Pretrained):
    """The MAPLE agent over ``anytask.data.appworld`` (see the module docstring)."""

    def __init__(self, fsm: bool = True, checks: bool = True, persist: bool = True, threshold: float = 0.85,
                 max_retries: int = 3, max_steps: int = 60, p_popup: float = 0.05, p_dead: float = 0.05,
                 p_wrong: float = 0.05, temperature: float = 0.25, seed: int = 0) -> None:
        self.fsm, self.checks, self.persist, self.threshold = fsm, checks, persist, threshold
        self.temperature = temperature
        self.max_retries, self.max_steps, self.seed = max_retries, max_steps, seed
        self.p_popup, self.p_dead, self.p_wrong = p_popup, p_dead, p_wrong

    # -- wiring ---------------------------------------------------------------------------------------------------
    def set_components(self, *, embed: Callable | None = None, actor: TextLM | None = None) -> "MapleAgent":
        """Use another embedding function for state merging (default MiniLM) or another actor (default
        ``actor_oracle()``; ``BackboneLM("smollm2")`` for the LM)."""
        if embed is not None:
            self._embed = embed
        if actor is not None:
            self._actor = actor
        return self

    @property
    def embed(self) -> Callable:
        if getattr(self, "_embed", None) is None:
            self._embed = _minilm_embed()
        return self._embed

    @property
    def actor(self) -> TextLM:
        if getattr(self, "_actor", None) is None:
            self._actor = actor_oracle()
        return self._actor

    def _world(self) -> AppWorld:
        return AppWorld(self.p_popup, self.p_dead, self.p_wrong, self.max_steps)

    # -- acting ---------------------------------------------------------------------------------------------------
    def _choose(self, goal_text: str, obs: dict, options: list[str], rng: np.random.Generator,
                bonus: np.ndarray | None = None) -> str:
        """The actor's pick among ``options`` (element names, "home", "back"): sampled from the softmax of its
        scores at ``temperature`` (0: the best, ties at random), so a reactive agent does not repeat a no-op
        forever."""
        prompt = (f"Goal: {goal_text}\nScreen: {obs['screen']}\nElements: {', '.join(obs['elements'])}\n"
                  f"Which one should be used next? Reply with one of: {', '.join(options)}.")
        scores = np.asarray(self.actor.rate(prompt, [""], options, kind="actor")[0], np.float64)
        if bonus is not None:
            scores = scores + bonus
        if self.temperature <= 0:
            return options[int(rng.choice(np.flatnonzero(scores >= scores.max() - 1e-9)))]
        p = np.exp((scores - scores.max()) / self.temperature)
        return options[int(rng.choice(len(options), p=p / p.sum()))]

    def _action(self, name: str) -> str:
        return name if name in ("home", "back") else f"tap:{name}"

    def run(self, task: Task, *, seed: int = 0, memory: FSM | None = None) -> dict:
        """One episode of ``task``; returns its record (and updates ``memory`` in place)."""
        world = self._world()
        rng = np.random.default_rng(seed + 7919 * self.seed)
        obs, _ = world.reset(seed=seed, options={"task": task})
        use_fsm = self.fsm and memory is not None
        checked = use_fsm and self.checks
        state = {"obs": obs, "cur": memory.add(obs) if use_fsm else None, "last": None}
        stable: list[int] = []
        rec = {"success": False, "steps": 0, "accurate": 0, "faults": 0, "retries": 0, "rollbacks": 0}

        def is_popup(o: dict) -> bool:
            return "Pop-up" in o["screen"] and any(e.lower() in DISMISS for e in o["elements"])

        def act(action: str) -> bool:
            before = state["cur"]
            obs, _, done, truncated, info = world.step(action)
            rec["steps"] += 1
            rec["accurate"] += int(info["accurate"])
            rec["faults"] += len(info["faults"])
            rec["success"] = info["success"]
            if use_fsm:
                state["cur"] = memory.add(obs)
                if not is_popup(obs) and not is_popup(state["obs"]):  # no transition is learned through a pop-up
                    memory.add_transition(before, action, state["cur"])
            state["obs"] = obs
            return done or truncated

        def target(goal):  # where the plan says the sub-goal's tap is (planning, not a check)
            return lambda s: goal.element in memory.elements[s] and goal.where in memory.descriptions[s]

        for goal in task.subgoals:
            retries, rolling = 0, False
            while True:
                obs, cur = state["obs"], state["cur"]
                if rec["steps"] >= self.max_steps or world.task is None:
                    return self._finish(rec)
                if is_popup(obs):  # close it (the actor picks the button)
                    if act(self._action(self._choose(goal.text, obs, obs["elements"] + ["home"], rng))):
                        return self._finish(rec)
                    continue
                if goal.element in obs["elements"] and (not checked or goal.where in obs["screen"]):
                    start = cur
                    if act(f"tap:{goal.element}"):
                        return self._finish(rec)
                    if not checked or goal.expect in state["obs"]["screen"]:
                        if use_fsm:  # a state where the sub-goal's post-condition held: stable
                            memory.stable[start] = True
                            stable.append(start)
                        break  # done (or, without checks, assumed done)
                    retries += 1
                    rec["retries"] += 1
                    if retries > self.max_retries:
                        return self._finish(rec)
                    continue  # a dead click: the pre-condition still holds, the tap is retried
                if not use_fsm:
                    if act(self._action(self._choose(goal.text, obs, self._options(obs["elements"]), rng))):
                        return self._finish(rec)
                    continue
                known = memory.path(cur, target(goal))
                if checked and rolling and stable and cur != stable[-1] and not known:
                    back = memory.path(cur, lambda s: s == stable[-1])  # roll back by known transitions first
                    action = back[0] if back else "back"
                elif known:
                    action = known[0]
                else:
                    # with checks, the plan's taps are off limits here: their pre-conditions do not hold
                    guarded = {g.element for g in task.subgoals} if self.checks else set()
                    action = self._explore(goal, obs, cur, memory, rng, guarded)
                rolling = False
                expected = memory.next_state(cur, action)
                if act(action):
                    return self._finish(rec)
                if checked and expected is not None and state["cur"] != expected and not is_popup(state["obs"]):
                    rolling = True  # an unexpected screen: roll back unless a known path leads on from here
                    rec["rollbacks"] += 1
        return self._finish(rec)

    def _explore(self, goal, obs, cur, memory: FSM, rng, guarded: set[str] = frozenset()) -> str:
        """The actor's pick with a bonus of half a point for each action not tried here yet; when every action here
        was tried, the first step towards the nearest known state with an untried one, else the actor's pick."""
        options = self._options([e for e in obs["elements"] if e not in guarded])
        tried = memory.tried(cur)
        bonus = np.array([0.0 if self._action(o) in tried else 0.5 for o in options])
        if bonus.any():
            return self._action(self._choose(goal.text, obs, options, rng, bonus))
        frontier = memory.path(cur, lambda s: bool({self._action(o) for o in self._options(
            [e for e in memory.elements[s] if e not in guarded])} - memory.tried(s)))
        if frontier:
            return frontier[0]
        return self._action(self._choose(goal.text, obs, options, rng))

    @staticmethod
    def _options(elements: list[str]) -> list[str]:
        return list(elements) + ["home", "back"]

    @staticmethod
    def _finish(rec: dict) -> dict:
        rec["action_accuracy"] = rec["accurate"] / max(rec["steps"], 1)
        return rec

    # -- the estimator ----------------------------------------------------------------------------------------------
    def _new_memory(self) -> FSM | None:
        return FSM(self.embed, self.threshold) if self.fsm else None

    def fit(self, tasks: Sequence[Task], seed: int = 0):
        """Run ``tasks`` once, building the FSM (kept across tasks unless ``persist=False``)."""
        if not tasks or not all(isinstance(t, Task) for t in tasks):
            raise AnytaskError("fit needs a non-empty list of appworld Tasks (anytask.data.appworld.all_tasks)")
        self.memory_ = self._new_memory()
        self.history_ = [self._step(t, seed + i) for i, t in enumerate(tasks)]
        return self

    def _step(self, task: Task, seed: int) -> dict:
        if not self.persist:
            self.memory_ = self._new_memory()
        return self.run(task, seed=seed, memory=self.memory_)

    def evaluate(self, tasks: Sequence[Task], seed: int = 10_000) -> dict:
        """Run each task (continuing the agent's memory when ``persist``); success, recovery success (success
        among episodes with at least one injected fault), action accuracy and steps."""
        if getattr(self, "memory_", None) is None:
            self.memory_ = self._new_memory()
        rows = [self._step(t, seed + i) for i, t in enumerate(tasks)]
        faulty = [r["success"] for r in rows if r["faults"]]
        return {"success": float(np.mean([r["success"] for r in rows])),
                "recovery_success": float(np.mean(faulty)) if faulty else None,
                "action_accuracy": float(np.sum([r["accurate"] for r in rows]) / max(sum(r["steps"] for r in rows),
                                                                                    1)),
                "steps": float(np.mean([r["steps"] for r in rows])),
                "faults": float(np.mean([r["faults"] for r in rows])), "episodes": len(rows),
                "states": len(self.memory_) if self.memory_ is not None else 0}

    def _get_state(self):
        mem = self.memory_.to_dict() if getattr(self, "memory_", None) is not None else None
        return {"memory": mem}, {}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        agent = cls(**params)
        if extra.get("memory") is not None:  # else evaluate starts an empty FSM
            agent.memory_ = FSM.from_dict(extra["memory"], lambda texts: agent.embed(texts))
        return agent
