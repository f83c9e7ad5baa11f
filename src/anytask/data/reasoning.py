"""Reasoning tasks for agents that choose *how* a model reasons (RL of Thoughts, card 34).

* ``word_problems(n, family, seed)``: arithmetic problems with known answers, made from templates (no data set
  needed): ``arith`` ("What is 7 + 5?"), ``word`` (one operation in a sentence) and ``two-step`` (two operations).
* ``SimulatedReasoner``: the card's stand-in for an LLM running logic blocks. A problem hides ``remaining``
  sub-goals and an ``errors`` count; each block has stochastic effects (*reason* resolves a sub-goal with
  probability ``p_reason``, halved on complex problems not yet decomposed, and slips an error in with probability
  ``q_error``; *decompose* makes later reasoning surer; *debate* reasons with a third of the error rate at five
  calls; *refine* clears an error; *terminate* answers). The observation is the paper's 7-feature rubric
  (A1 modelling, A2 clarity, A3 calculation, B1 complexity left, B2 alternatives, C1 closeness, C2 completeness;
  1 False, 2 Unsure, 3 True, 0 not parsed), each feature redrawn at random with probability ``rubric_noise`` and
  lost (0) with probability ``parse_fail``. Rewards follow the paper's code: a noisy process-reward score of the
  last step for non-terminal steps, the outcome (1 correct, 0 wrong) at termination; ``max_depth`` blocks without
  terminating force an answer.

Both environments (this one and the LM-run ``anytask.methods.agents.rlot.LMReasoner``) speak the same API:
``reset(seed=) -> (obs, info)``, ``step(action) -> (obs, reward, terminated, truncated, info)``, ``n_actions``,
``info["correct"]`` and ``info["calls"]`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError

BLOCKS = ("reason", "decompose", "debate", "refine", "terminate")
REASON, DECOMPOSE, DEBATE, REFINE, TERMINATE = range(5)
RUBRIC = (
    ("A1", "The problem is modelled correctly so far."),
    ("A2", "The reasoning so far is clear enough to continue from."),
    ("A3", "Every calculation so far is correct."),
    ("B1", "Much of the problem remains to be solved."),
    ("B2", "There is another way to solve the problem."),
    ("C1", "The reasoning has reached the final answer."),
    ("C2", "The last step is complete."),
)
FAMILIES = ("arith", "word", "two-step")


@dataclass(frozen=True)
class Problem:
    question: str
    answer: int
    family: str
    values: tuple[int, ...] = ()  # every number a correct solution may write: operands, intermediates, answer


_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana")
_THINGS = ("apples", "pens", "books", "coins", "stamps", "cards", "shells", "marbles")


def word_problems(n: int, family: str = "arith", seed: int = 0) -> list[Problem]:
    """``n`` problems of one family, seeded; answers are non-negative integers."""
    if family not in FAMILIES:
        raise AnytaskError(f"unknown problem family {family!r}; use one of {', '.join(FAMILIES)}")
    if n < 1:
        raise AnytaskError(f"n={n}: ask for at least one problem")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        who, what = rng.choice(_NAMES), rng.choice(_THINGS)
        if family == "arith":
            op = rng.choice(["+", "-", "*"])
            a, b = (int(rng.integers(2, 10)), int(rng.integers(2, 10))) if op == "*" else \
                (int(rng.integers(5, 50)), int(rng.integers(2, 20)))
            if op == "-" and b > a:
                a, b = b, a
            ans = {"+": a + b, "-": a - b, "*": a * b}[op]
            out.append(Problem(f"What is {a} {op} {b}?", ans, family, (a, b, ans)))
        elif family == "word":
            a, b = int(rng.integers(5, 30)), int(rng.integers(2, 10))
            if rng.random() < 0.5:
                out.append(Problem(f"{who} has {a} {what} and gets {b} more. How many {what} does {who} have now?",
                                   a + b, family, (a, b, a + b)))
            else:
                out.append(Problem(f"{who} has {a} {what} and gives away {b}. How many {what} does {who} have left?",
                                   a - b, family, (a, b, a - b)))
        else:
            a, b, c = int(rng.integers(10, 30)), int(rng.integers(2, 10)), int(rng.integers(2, 8))
            out.append(Problem(f"{who} has {a} {what}, buys {b} more and then gives {c} to a friend. How many "
                               f"{what} does {who} have now?", a + b - c, family,
                               (a, b, c, a + b, b - c, a - c, a + b - c)))
    return out


class SimulatedReasoner:
    """The card's simulated reasoner (see the module docstring); ``setting`` names a preset of its parameters."""

    SETTINGS = {
        "base": dict(p_reason=0.6, q_error=0.25, rubric_noise=0.15, parse_fail=0.05, prm_noise=0.15, max_goals=4),
        "noisy": dict(p_reason=0.5, q_error=0.35, rubric_noise=0.3, parse_fail=0.1, prm_noise=0.3, max_goals=4),
        "hard": dict(p_reason=0.55, q_error=0.25, rubric_noise=0.15, parse_fail=0.05, prm_noise=0.15, max_goals=5),
    }
    n_actions = len(BLOCKS)
    n_features = len(RUBRIC)

    def __init__(self, setting: str = "base", *, max_depth: int = 5, prm_offset: float = 0.0, **overrides) -> None:
        if setting not in self.SETTINGS:
            raise AnytaskError(f"unknown reasoner setting {setting!r}; use one of {', '.join(self.SETTINGS)}")
        params = {**self.SETTINGS[setting], **overrides}
        unknown = set(overrides) - set(self.SETTINGS["base"])
        if unknown:
            raise AnytaskError(f"unknown reasoner parameters {sorted(unknown)}; use {sorted(self.SETTINGS['base'])}")
        self.setting, self.max_depth, self.params = setting, int(max_depth), params
        self.prm_offset = float(prm_offset)
        for k, v in params.items():
            setattr(self, k, v)
        self.rng = np.random.default_rng(0)
        self._state: dict | None = None

    def reset(self, *, seed: int | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        goals = int(self.rng.integers(1, self.max_goals + 1))
        self._state = dict(remaining=goals, errors=0, decomposed=False, depth=0, progressed=False, calls=1)
        return self._rubric(), {"remaining": goals}

    def _rubric(self) -> np.ndarray:
        s = self._state
        r, e = s["remaining"], s["errors"]
        true = np.array([3 if e == 0 else 1, 3 if s["decomposed"] or r <= 1 else 2, 3 if e == 0 else 1,
                         3 if r >= 2 else 1, 3 if r >= 3 else 2, 3 if r == 0 else (2 if r == 1 else 1),
                         3 if s["progressed"] else 1], dtype=np.int64)
        noisy = np.where(self.rng.random(7) < self.rubric_noise, self.rng.integers(1, 4, 7), true)
        return np.where(self.rng.random(7) < self.parse_fail, 0, noisy)

    def _reason(self, error_rate: float, scale: float = 1.0) -> None:
        s = self._state
        p = self.p_reason * scale
        if s["decomposed"]:
            p = min(0.95, p + 0.3)
        elif s["remaining"] >= 3:
            p *= 0.5
        s["progressed"] = s["remaining"] > 0 and self.rng.random() < p
        if s["progressed"]:
            s["remaining"] -= 1
        if self.rng.random() < error_rate:
            s["errors"] += 1

    def step(self, action: int):
        if self._state is None:
            raise AnytaskError("call reset() before step()")
        action = int(action)
        if not 0 <= action < self.n_actions:
            raise AnytaskError(f"action {action} is outside the {self.n_actions} logic blocks {BLOCKS}")
        s = self._state
        s["depth"] += 1
        if action == TERMINATE or s["depth"] > self.max_depth:
            correct = s["remaining"] == 0 and s["errors"] == 0
            info = {"correct": bool(correct), "calls": s["calls"] + 1, "forced": action != TERMINATE}
            self._state = None
            return np.zeros(7, np.int64), float(correct), True, False, info
        if action == REASON:
            self._reason(self.q_error)
            s["calls"] += 2
        elif action == DECOMPOSE:
            first = not s["decomposed"]
            s["decomposed"] = True
            self._reason(self.q_error, 0.5 if first else 1.0)  # listing sub-tasks leaves less room to solve one
            s["calls"] += 2
        elif action == DEBATE:
            self._reason(self.q_error / 3)
            s["calls"] += 6
        else:  # REFINE
            if s["errors"] and self.rng.random() < 0.8:
                s["errors"] -= 1
            s["progressed"] = False
            s["calls"] += 2
        prm = np.clip((0.9 if s["errors"] == 0 else 0.2) + self.rng.normal(0, self.prm_noise), 0, 1)
        return self._rubric(), float(prm - self.prm_offset), False, False, {"remaining": s["remaining"]}
