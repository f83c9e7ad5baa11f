"""LMA3: an autotelic agent whose goals, hindsight relabels and rewards come from a language model (Colas et al.
2023, card 06, https://arxiv.org/abs/2305.12487).

The agent invents its own goals in Mini-CookingWorld (``anytask.data.cooking``) and keeps a **repertoire**: goal
text -> the shortest command sequence known to achieve it (the card's replay-based policy: memorise, replay,
explore from there; not RL). Each episode it

1. picks a goal: with probability ``p_practice`` a mastered one, else one from the **goal generator** — with
   ``compose`` a new "A then B" over two mastered goals, else a goal about things it has seen (``goals="random"``:
   a random string of the goal grammar over the world's words, many impossible);
2. acts: replays the goal's known sequence (for "A then B", A's then B's, skipping commands that no longer apply,
   or a mastered goal's sequence for a new atomic goal), then explores ``explore_steps`` random commands;
3. credits: the **relabeler** lists what the trajectory achieved (with ``relabel``; without it only the pursued
   goal is checked), the **reward function** judges each candidate on the shortest prefix, and every confirmed
   goal keeps its shortest sequence. The repertoire never shrinks.

The three parts talk to a ``TextLM`` with kinds ``"relabel"``, ``"goal"`` and ``"reward"``: ``cooking_oracle()``
(rules that replay the commands in the deterministic world: the relabeler's state differences, a composition of
mastered goals, the predicate check) or SmolLM2 (``BackboneLM``), or a mix through ``RoutedLM``. LM answers are
parsed strictly — a relabel line or a generated goal must parse in the goal grammar, a reward is the better of
Yes / No — and an answer that does not parse is counted and replaced by the oracle's (never a crash). With
``dedup`` and an embedding function (MiniLM by default), a new goal text within cosine ``dedup`` of a known one is
the same goal (paraphrases merge).

    agent = AGENTS.get("lma3")(episodes=2000, seed=0).fit()
    agent.mastered()                      # goals in the repertoire
    agent.coverage(EVAL_GOALS)            # share of a held-out goal set some stored sequence achieves
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.data.cooking import (
    CONTAINERS, FOODS, ROOMS, CookingWorld, achieved, atomic_goals, holds, holds_at, split_goal,
)
from anytask.methods.agents.base import AGENTS, RoutedLM, RuleLM, TextLM

IDLE = ("look", "inventory", "wait")
# held out: never proposed by the generator's templates in training (it composes with "then" only)
EVAL_GOALS = tuple([f"cut the {f} and cook the {f}" for f in FOODS]
                   + [f"put the {f} on the table and go to the garden" for f in ("tomato", "egg", "potato")]
                   + [f"take the {a} and take the {b}" for a, b in (("apple", "bread"), ("carrot", "tomato"),
                                                                    ("potato", "egg"))]
                   + ["cook the egg then put the egg on the table", "cut the bread then eat the bread",
                      "open the cupboard then put the carrot in the cupboard"])
_ATOMIC = set(atomic_goals())


def parse_goal(text: str) -> str | None:
    """A goal in the grammar (atomic goals joined by " then " / " and "), lower-cased and trimmed, or None."""
    goal = re.sub(r"\s+", " ", (text or "").strip().strip(".").lower())
    kind, parts = split_goal(goal)
    return goal if parts and all(p in _ATOMIC for p in parts) else None


def _commands(prompt: str) -> list[str]:
    m = re.search(r"Commands: (.*)\n", prompt)
    return [c.strip() for c in m.group(1).split(";") if c.strip()] if m and m.group(1).strip() else []


def replay(commands: Sequence[str], skip_invalid: bool = True) -> tuple[list[str], list[dict]]:
    """Run ``commands`` from the start state; returns the commands that ran and the states (initial first)."""
    world = CookingWorld()
    _, info = world.reset()
    ran, states = [], [info["state"]]
    for c in commands:
        if c not in world.valid_actions():
            if skip_invalid:
                continue
            raise AnytaskError(f"{c!r} does not apply at step {len(ran)}")
        _, _, _, _, info = world.step(c)
        ran.append(c)
        states.append(info["state"])
    return ran, states


def cooking_oracle(seed: int = 0) -> RuleLM:
    """The rule-based relabeler, goal generator and reward function behind ``TextLM`` (they replay the prompt's
    commands in the deterministic world)."""
    rng = np.random.default_rng(seed)

    def respond(kind: str, prompt: str) -> str:
        if kind == "relabel":
            _, states = replay(_commands(prompt))
            return "\n".join(dict.fromkeys(g for t in range(1, len(states)) for g in achieved(states[t - 1],
                                                                                              states[t])))
        if kind == "goal":
            mastered = re.search(r"Mastered: (.*)\n", prompt).group(1).split("; ")
            atomic = [g for g in mastered if split_goal(g)[0] == "atomic"]
            if len(atomic) < 2:
                return ""
            a, b = rng.choice(len(atomic), 2, replace=False)
            return f"Goal: {atomic[a]} then {atomic[b]}"
        raise AnytaskError(f"the cooking oracle does not answer {kind!r}")

    def rate(kind: str, prompt: str, questions, options):
        goal = re.search(r"Goal: (.*)\n", prompt).group(1)
        _, states = replay(_commands(prompt))
        ok = holds(goal, states)
        return np.array([[0.0 if (o.lower() == "yes") == ok else -9.0 for o in options]])

    oracle = RuleLM(respond, rate, name="cooking oracle")
    oracle.knows_truth = True  # its reward is the predicate check itself: the loop may skip calls it would refuse
    return oracle


@AGENTS.register("lma3", reference="Colas et al. 2023, LMA3, https://arxiv.org/abs/2305.12487",
                 input="environments", output="episodes", saveable=True,
                 summary="autotelic agent: LM (or rule) relabeler, compositional goal generator and reward "
                         "function; a replayed repertoire of self-invented goals")
class LMA3Agent(BaseEstimator, Pretrained):
    """The LMA3 loop (see the module docstring)."""

    def __init__(self, episodes: int = 2000, explore_steps: int = 8, p_practice: float = 0.2,
                 relabel: bool = True, compose: bool = True, goals: str = "generated", dedup: float | None = None,
                 seed: int = 0, progress: bool = False) -> None:
        self.episodes, self.explore_steps, self.p_practice = episodes, explore_steps, p_practice
        self.relabel, self.compose, self.goals, self.dedup = relabel, compose, goals, dedup
        self.seed, self.progress = seed, progress

    def set_components(self, *, lm: TextLM | None = None, embed: Callable | None = None) -> "LMA3Agent":
        """The answerer of the "relabel", "goal" and "reward" requests (default ``cooking_oracle``; e.g.
        ``RoutedLM({"reward": BackboneLM("smollm2")}, default=cooking_oracle())``), and the embedding function
        for ``dedup`` (default MiniLM)."""
        if lm is not None:
            self._lm = lm
        if embed is not None:
            self._embed = embed
        return self

    @property
    def lm(self) -> TextLM:
        if getattr(self, "_lm", None) is None:
            self._lm = cooking_oracle(self.seed)
        return self._lm

    # -- the three LM-backed parts --------------------------------------------------------------------------------
    @staticmethod
    def _story(commands: Sequence[str]) -> str:
        return f"Commands: {'; '.join(commands)}\n"

    def _oracle(self) -> RuleLM:
        if getattr(self, "_fallback", None) is None:
            self._fallback = cooking_oracle(self.seed)
        return self._fallback

    def _relabel(self, commands: list[str]) -> list[str]:
        ask = self._story(commands) + "List the goals these commands achieved, one per line, like 'cut the apple'."
        text = self.lm.generate(ask, kind="relabel", max_new_tokens=64)
        goals = [g for g in (parse_goal(x) for x in text.splitlines()) if g]
        if text.strip() and not goals:  # nothing in the answer parses: counted, the rules answer instead
            self.lm.stats.parse_failures["relabel"] += 1
            goals = [g for g in (parse_goal(x) for x in self._oracle().generate(ask, kind="relabel").splitlines())
                     if g]
        return goals

    def _generate(self, rng: np.random.Generator) -> str:
        mastered = self.mastered()
        if self.goals == "random":
            words = list(FOODS) + list(CONTAINERS) + list(ROOMS) + ["knife", "table"]
            verb = rng.choice(["go to the {}", "take the {}", "cut the {}", "cook the {}", "eat the {}",
                               "open the {}", "put the {} in the {}", "put the {} on the table"])
            return verb.format(*rng.choice(words, verb.count("{}")))
        atomic = [g for g in mastered if split_goal(g)[0] == "atomic"]
        if self.compose and len(atomic) >= 2 and rng.random() < 0.5:
            ask = f"Mastered: {'; '.join(atomic)}\nPropose a new goal that does one of them then another. " \
                  "Reply as 'Goal: <goal> then <goal>'."
            text = self.lm.generate(ask, kind="goal", max_new_tokens=32)
            goal = parse_goal(text.split("Goal:", 1)[-1])
            if goal is None or split_goal(goal)[0] == "atomic" or not all(p in atomic for p in split_goal(goal)[1]):
                self.lm.stats.parse_failures["goal"] += 1
                goal = parse_goal(self._oracle().generate(ask, kind="goal").split("Goal:", 1)[-1])
            if goal:
                return goal
        seen = [g for g in atomic_goals() if g not in self.repertoire_ and self._seen(g)]
        return str(rng.choice(seen)) if seen else str(rng.choice(atomic_goals()))

    def _seen(self, goal: str) -> bool:
        """Whether every word the goal names was mentioned in an observation so far."""
        return all(w in self.seen_words_ for w in re.findall(r"the ([a-z]+(?: room)?)", goal))

    def _reward(self, goal: str, commands: list[str]) -> bool:
        scores = self.lm.rate(self._story(commands) + f"Goal: {goal}\nWas the goal achieved?", ["Answer:"],
                              ("Yes", "No"), kind="reward")[0]
        return bool(scores[0] > scores[1])

    # -- the loop ---------------------------------------------------------------------------------------------------
    def _key(self, goal: str) -> str:
        """The repertoire's name for ``goal``: itself, or a known goal within cosine ``dedup`` of it."""
        if self.dedup is None or goal in self.repertoire_ or not self.repertoire_:
            return goal
        if getattr(self, "_embed", None) is None:
            from anytask.methods.agents.maple import _minilm_embed

            self._embed = _minilm_embed()
        keys = list(self.repertoire_)
        X = np.asarray(self._embed(keys + [goal]), np.float64)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        sims = X[:-1] @ X[-1]
        return keys[int(np.argmax(sims))] if sims.max() >= self.dedup else goal

    def _judge_is_rules(self) -> bool:
        judge = self.lm._for("reward") if isinstance(self.lm, RoutedLM) else self.lm
        return getattr(judge, "knows_truth", False)

    def _credit(self, goal: str, commands: list[str], states: list[dict]) -> None:
        """Store the prefix of ``commands`` the reward function confirms for ``goal``: with the rule judge the
        shortest one (it knows when the goal held), with an LM judge the whole episode (nothing else tells it)."""
        t = len(states) - 1
        if self._judge_is_rules():
            t = holds_at(goal, states)
            if t is None:
                return  # the rules would say no: skip the call
        prefix = commands[:t]
        if not self._reward(goal, prefix):
            return
        key = self._key(goal)
        entry = self.repertoire_.get(key)
        if entry is None or len(prefix) < len(entry):
            self.repertoire_[key] = list(prefix)

    def _act(self, goal: str, rng: np.random.Generator) -> tuple[list[str], list[dict]]:
        kind, parts = split_goal(goal)
        plan: list[str] = []
        known = [p for p in parts if p in self.repertoire_]
        if goal in self.repertoire_:
            plan = list(self.repertoire_[goal])
        elif known:
            for p in known:
                plan += self.repertoire_[p]
        elif self.repertoire_:
            plan = list(self.repertoire_[str(rng.choice(list(self.repertoire_)))])
        world = CookingWorld()
        text, info = world.reset()
        commands, states = [], [info["state"]]
        self.seen_words_.update(re.findall(r"[a-z]+(?: room)?", text))
        for c in plan + [None] * self.explore_steps:
            valid = world.valid_actions()
            if c is None:
                c = str(rng.choice([a for a in valid if a not in IDLE]))
            elif c not in valid:
                continue
            text, _, _, _, info = world.step(c)
            self.seen_words_.update(re.findall(r"[a-z]+(?: room)?", text))
            commands.append(c)
            states.append(info["state"])
        return commands, states

    def fit(self, world=None):
        """Run ``episodes`` episodes of the loop (the world is always Mini-CookingWorld)."""
        if self.goals not in ("generated", "random"):
            raise AnytaskError(f"goals={self.goals!r}: use 'generated' or 'random'")
        if not isinstance(self.episodes, (int, np.integer)) or self.episodes < 1:
            raise AnytaskError(f"episodes={self.episodes!r}: must be a positive integer")
        if not 0 <= self.p_practice <= 1:
            raise AnytaskError(f"p_practice={self.p_practice}: must lie in [0, 1]")
        rng = np.random.default_rng(self.seed)
        self.repertoire_: dict[str, list[str]] = {}
        self.seen_words_: set[str] = set()
        self.curve_, self.goals_tried_ = [], []
        for _ in tqdm(range(self.episodes), desc="lma3", disable=not self.progress):
            if self.repertoire_ and rng.random() < self.p_practice:
                goal = str(rng.choice(list(self.repertoire_)))
            else:
                goal = self._generate(rng)
            self.goals_tried_.append(goal)
            commands, states = self._act(goal, rng)
            candidates = [goal]
            if self.relabel:
                candidates += [g for g in self._relabel(commands) if g != goal]
            for g in dict.fromkeys(candidates):
                self._credit(g, commands, states)
            self.curve_.append(len(self.repertoire_))
        return self

    def mastered(self) -> list[str]:
        return list(getattr(self, "repertoire_", {}))

    def coverage(self, goals: Sequence[str] = EVAL_GOALS) -> float:
        """The share of ``goals`` that some stored sequence achieves when replayed (its own goal aside)."""
        trajectories = [replay(seq)[1] for seq in self.repertoire_.values()]
        return float(np.mean([any(holds(g, states) for states in trajectories) for g in goals]))

    def _get_state(self):
        return {"repertoire": self.repertoire_, "curve": self.curve_, "seen": sorted(self.seen_words_)}, {}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        agent = cls(**params)
        agent.repertoire_ = {k: list(v) for k, v in extra["repertoire"].items()}
        agent.curve_, agent.seen_words_, agent.goals_tried_ = list(extra["curve"]), set(extra["seen"]), []
        return agent


__all__ = ["EVAL_GOALS", "LMA3Agent", "cooking_oracle", "parse_goal", "replay"]
