"""RL of Thoughts: a tiny navigator picks which logic block a frozen LM runs next (Hao et al. 2025, card 34,
https://arxiv.org/abs/2505.14140).

The navigator is a Dueling Double-DQN over the LM's 7-feature self-evaluation rubric (``anytask.data.reasoning``)
choosing among five blocks: reason one step, decompose, debate, refine, terminate. The LM's weights never change;
the navigator has under 3k parameters and the paper's settings: Adam lr 0.01 halved every 1000 episodes, gamma
0.9, replay of 500 transitions with learning from a full buffer in batches of 64, the target network copied every
50 updates, epsilon multiplied by 0.9995 per step, max depth 5, and at the first step *refine* (nothing to refine
yet) is replaced by *reason* (the official code maps index 3 to 0).

Environments with the same API:

* ``anytask.data.reasoning.SimulatedReasoner`` — the card's simulated reasoner (training takes seconds);
* ``LMReasoner(problems, lm)`` — a ``TextLM`` (SmolLM2, a rule oracle or a mix) actually runs the blocks on
  word problems with known answers; the rubric is the LM rating the 7 statements True / Maybe / False
  (``rubric="rate"``, log-probabilities of True / Maybe / False) or writing them out (``rubric="generate"``, parsed by
  ``parse_rubric``, a feature that does not parse is 0 and counted); the step reward is the LM's own probability
  that the last step is correct (a self-judged stand-in for the paper's 7B process reward model); the outcome is
  checked against the known answer.

    nav = AGENTS.get("rlot")(seed=0).fit("base")        # a SimulatedReasoner setting, or any such environment
    nav.evaluate(LMReasoner(word_problems(30, "word"), BackboneLM("smollm2")))
    # {"accuracy": ..., "steps": ..., "calls": ..., "seconds": ..., "blocks": {...}}

``POLICIES`` holds the fixed strategies the navigator is compared with (random, direct answer, always-reason,
CoT-like: two reasoning steps then the answer, and a hand rule over the rubric).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.data.reasoning import (
    BLOCKS, DEBATE, DECOMPOSE, REASON, REFINE, RUBRIC, TERMINATE, Problem, SimulatedReasoner,
)
from anytask.methods.agents.base import AGENTS, CallStats, RuleLM, TextLM, first_int

VERDICTS = ("False", "Maybe", "True")  # rubric values 1, 2, 3 (one token each for SmolLM2: one forward per row)
_RUBRIC_LINE = re.compile(r"\b(A[1-3]|B[12]|C[12])\s*[=:-]\s*\**\s*(true|false|unsure|maybe|yes|no|n/?a)\b",
                          re.IGNORECASE)
_VALUE = {"true": 3, "yes": 3, "false": 1, "no": 1, "unsure": 2, "maybe": 2}
_FEATURES = [key for key, _ in RUBRIC]


def parse_rubric(text: str, stats: CallStats | None = None) -> np.ndarray:
    """The 7 rubric values from an LM's free-text evaluation (``A1: True`` ... ``C2: Unsure``): a feature that is
    missing, not applicable or unreadable is 0 (the paper's fallback), each counted as a ``rubric`` parse
    failure."""
    out = np.zeros(len(_FEATURES), np.int64)
    for key, word in _RUBRIC_LINE.findall(text or ""):
        i = _FEATURES.index(key.upper())
        if out[i] == 0:
            out[i] = _VALUE.get(word.lower(), 0)
    if stats is not None:
        stats.parse_failures["rubric"] += int((out == 0).sum())
    return out


# -- the LM-run environment ------------------------------------------------------------------------------------------
class LMReasoner:
    """Word problems solved by a ``TextLM`` running the logic blocks (see the module docstring). ``reset`` takes
    the next problem in order, or ``options={"index": i}``."""

    n_actions = len(BLOCKS)
    n_features = len(RUBRIC)

    def __init__(self, problems: Sequence[Problem], lm: TextLM, *, rubric: str = "rate", max_depth: int = 5,
                 max_new_tokens: int = 48) -> None:
        if not problems:
            raise AnytaskError("LMReasoner needs at least one problem (see anytask.data.reasoning.word_problems)")
        if rubric not in ("rate", "generate"):
            raise AnytaskError(f"rubric={rubric!r}: use 'rate' (scored True/Maybe/False) or 'generate' (parsed text)")
        self.problems, self.lm, self.rubric = list(problems), lm, rubric
        self.max_depth, self.max_new_tokens = int(max_depth), int(max_new_tokens)
        self._next, self._problem, self.steps = 0, None, []

    def __len__(self) -> int:
        return len(self.problems)

    def _header(self) -> str:
        lines = [f"Problem: {self._problem.question}"]
        if self.steps:
            lines += ["Steps so far:"] + [f"{i + 1}. {s}" for i, s in enumerate(self.steps)]
        else:
            lines.append("No steps yet.")
        return "\n".join(lines) + "\n"

    def _gen(self, kind: str, instruction: str, n: int | None = None, seed: int | None = None) -> str:
        out = self.lm.generate(self._header() + instruction, kind=kind, max_new_tokens=n or self.max_new_tokens,
                               seed=seed)
        lines = [x.strip() for x in out.strip().splitlines() if x.strip()]
        return " ".join(lines[:3]) if lines else ""

    def _rubric(self) -> np.ndarray:
        ask = self._header() + "Judge the reasoning so far: is each statement True, False or Maybe?"
        if self.rubric == "generate":
            text = self.lm.generate(ask + " Reply with one line per statement, like 'A1: True'.\n" + "\n".join(
                f"{k}: {s}" for k, s in RUBRIC), kind="rubric", max_new_tokens=60)
            return parse_rubric(text, self.lm.stats)
        scores = self.lm.rate(ask, [f"Statement: {s}\nVerdict:" for _, s in RUBRIC], VERDICTS, kind="rubric")
        return scores.argmax(1).astype(np.int64) + 1

    def _prm(self) -> float:
        scores = self.lm.rate(self._header() + "Is the last step correct?", ["Answer:"], ("Yes", "No"), kind="prm")[0]
        return float(np.exp(scores[0]) / np.exp(scores).sum())

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        index = (options or {}).get("index", self._next)
        if not 0 <= index < len(self.problems):
            raise AnytaskError(f"problem index {index} is outside 0..{len(self.problems) - 1}")
        self._index, self._problem, self.steps, self.depth = index, self.problems[index], [], 0
        self._next = (index + 1) % len(self.problems)
        self._calls0 = self.lm.stats.total_calls
        self._seconds0 = self.lm.stats.total_seconds
        return self._rubric(), {"index": index}

    def step(self, action: int):
        if self._problem is None:
            raise AnytaskError("call reset() before step()")
        action = int(action)
        if not 0 <= action < self.n_actions:
            raise AnytaskError(f"action {action} is outside the {self.n_actions} logic blocks {BLOCKS}")
        self.depth += 1
        if action == TERMINATE or self.depth > self.max_depth:
            text = self.lm.generate(self._header() + "What is the final answer? Reply with the number only.",
                                    kind="block:terminate", max_new_tokens=8, prefix="The final answer is")
            answer = first_int(text, self.lm.stats, "block:terminate")
            info = {"correct": answer == self._problem.answer, "answer": answer, "steps": list(self.steps),
                    "forced": action != TERMINATE, "calls": self.lm.stats.total_calls - self._calls0,
                    "seconds": self.lm.stats.total_seconds - self._seconds0}
            self._problem = None
            return np.zeros(self.n_features, np.int64), float(info["correct"]), True, False, info
        if action == REFINE and self.steps:
            self.steps[-1] = self._gen("block:refine", "Check the last step. If it has a mistake, rewrite it "
                                       "correctly; otherwise repeat it. Write only that step.") or self.steps[-1]
        elif action == DECOMPOSE:
            self.steps.append(self._gen("block:decompose", "Break the problem into sub-questions, then answer "
                                        "each one in order using earlier answers.", n=2 * self.max_new_tokens))
        elif action == DEBATE:
            plans = [self._gen("block:debate", "Propose a plan for the next step in one sentence.", n=24, seed=k)
                     for k in (1, 2, 3)]
            ask = self._header() + "Plans:\n" + "\n".join(f"{k + 1}. {p}" for k, p in enumerate(plans))
            pick = self.lm.choose(ask + "\nWhich plan is the most promising?", ("1", "2", "3"), kind="block:debate")
            self.steps.append(self._gen("block:debate", f"Plan: {plans[pick]}\nFollowing the plan, write only the "
                                        "next step of the solution, with its calculation."))
        else:  # REASON (and REFINE with nothing to refine yet)
            self.steps.append(self._gen("block:reason", "Write only the next step of the solution, in one short "
                                        "sentence with its calculation."))
        return self._rubric(), self._prm(), False, False, {"index": self._index}


def reasoning_oracle(problems: Sequence[Problem]) -> RuleLM:
    """A rule-based answerer for ``LMReasoner`` prompts that knows every problem's numbers: blocks write a correct
    next step, the rubric says whether every ``= N`` result so far is one a correct solution can contain and
    whether the answer is reached, the step reward is 1 for a clean step, and the final answer is the true one."""
    by_question = {p.question: p for p in problems}

    def parse(prompt: str) -> tuple[Problem, list[str]]:
        m = re.search(r"Problem: (.*)\n", prompt)
        if m is None or m.group(1) not in by_question:
            raise AnytaskError("the reasoning oracle was asked about a problem it was not given")
        steps = re.findall(r"^\d+\. (.*)$", prompt.split("Plans:")[0], re.MULTILINE)
        return by_question[m.group(1)], steps

    def results(steps: list[str]) -> list[int]:
        return [int(x) for s in steps for x in re.findall(r"=\s*(-?\d+)", s)]

    def respond(kind: str, prompt: str) -> str:
        p, steps = parse(prompt)
        if kind == "block:terminate":
            return f" {p.answer}."
        done = set(results(steps))
        todo = [v for v in p.values[len(p.values) - (2 if p.family == "two-step" else 1):] if v not in done]
        return f"So the result is = {todo[0] if todo else p.answer}."

    def rate(kind: str, prompt: str, questions: list[str], options: list[str]) -> np.ndarray:
        p, steps = parse(prompt)
        found = results(steps)
        clean = all(v in p.values for v in found)
        if kind == "prm":
            return np.log(np.array([[0.95, 0.05] if clean else [0.05, 0.95]]))
        if kind != "rubric":
            return np.zeros((len(questions), len(options)))
        reached = p.answer in found
        truth = [clean, None, clean, not reached, None, reached, bool(steps) and bool(results(steps[-1:]))]
        out = np.full((len(questions), len(options)), -5.0)
        for i, t in enumerate(truth[: len(questions)]):
            out[i, {True: 2, False: 0, None: 1}[t]] = 0.0
        return out

    return RuleLM(respond, rate, name="oracle")


# -- the navigator -----------------------------------------------------------------------------------------------
class DuelingQ(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) over a two-layer MLP (the paper's dueling network)."""

    def __init__(self, n_features: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.value, self.advantage = nn.Linear(hidden, 1), nn.Linear(hidden, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        a = self.advantage(h)
        return self.value(h) + a - a.mean(-1, keepdim=True)


class Replay:
    """A ring buffer of (s, a, r, done, s2) with a fixed capacity (the oldest row is overwritten)."""

    def __init__(self, capacity: int, n_features: int) -> None:
        self.capacity, self.n, self.i = int(capacity), 0, 0
        self.s = np.zeros((capacity, n_features), np.float32)
        self.s2 = np.zeros((capacity, n_features), np.float32)
        self.a = np.zeros(capacity, np.int64)
        self.r = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)

    def __len__(self) -> int:
        return self.n

    def add(self, s, a, r, done, s2) -> None:
        self.s[self.i], self.a[self.i], self.r[self.i], self.done[self.i], self.s2[self.i] = s, a, r, done, s2
        self.i = (self.i + 1) % self.capacity
        self.n = min(self.n + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch: int):
        idx = rng.integers(0, self.n, batch)
        return (torch.from_numpy(self.s[idx]), torch.from_numpy(self.a[idx]), torch.from_numpy(self.r[idx]),
                torch.from_numpy(self.done[idx]), torch.from_numpy(self.s2[idx]))


def double_dqn_targets(online: nn.Module, target: nn.Module, r, done, s2, gamma: float) -> torch.Tensor:
    """r + gamma * Q_target(s2, argmax_a Q_online(s2, a)) for non-terminal rows (double DQN)."""
    with torch.no_grad():
        a2 = online(s2).argmax(1, keepdim=True)
        return r + gamma * (1 - done) * target(s2).gather(1, a2).squeeze(1)


def first_step_mask(block: int, t: int) -> int:
    """At the first step there is nothing to refine: *refine* becomes *reason* (the official code maps 3 to 0)."""
    return REASON if t == 0 and block == REFINE else block


def _features(obs) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32) / 3.0


def _make_env(env):
    if isinstance(env, str):
        return SimulatedReasoner(env)
    if not all(hasattr(env, k) for k in ("reset", "step", "n_actions", "n_features")):
        raise AnytaskError(f"{type(env).__name__} is not a reasoning environment: pass a SimulatedReasoner setting "
                           f"({', '.join(SimulatedReasoner.SETTINGS)}), a SimulatedReasoner or an LMReasoner")
    return env


def run_episode(env, policy: Callable[[np.ndarray, int], int], *, seed: int | None = None,
                options: dict | None = None) -> dict:
    """Roll one episode of ``policy(obs, t) -> block``; the first-step mask (refine -> reason) applies."""
    obs, _ = env.reset(seed=seed, options=options) if options is not None else env.reset(seed=seed)
    blocks, t = [], 0
    while True:
        a = first_step_mask(int(policy(obs, t)), t)
        blocks.append(BLOCKS[a])
        obs, _, done, _, info = env.step(a)
        t += 1
        if done:
            return {"correct": bool(info["correct"]), "steps": t, "blocks": blocks, "calls": info.get("calls", 0),
                    "seconds": info.get("seconds", 0.0)}


def evaluate_policy(env, policy: Callable[[np.ndarray, int], int], episodes: int | None = None, seed: int = 0,
                    progress: bool = False) -> dict:
    """Accuracy, mean blocks per problem, LM calls and seconds per problem, and how often each block ran. An
    ``LMReasoner`` runs each of its problems once (``episodes`` defaults to all of them)."""
    env = _make_env(env)
    lm_env = isinstance(env, LMReasoner)
    n = episodes or (len(env) if lm_env else 500)
    rows = []
    for i in tqdm(range(n), desc="episodes", disable=not progress, leave=False):
        if lm_env:
            rows.append(run_episode(env, policy, options={"index": i % len(env)}))
        else:
            rows.append(run_episode(env, policy, seed=seed * 100_003 + i))
    counts = Counter(b for r in rows for b in r["blocks"])
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("correct", "steps", "calls", "seconds")}
    return {"accuracy": mean["correct"], "steps": mean["steps"], "calls": mean["calls"], "seconds": mean["seconds"],
            "blocks": {b: counts[b] / len(rows) for b in BLOCKS}, "episodes": len(rows),
            "correct": [r["correct"] for r in rows]}


POLICIES: dict[str, Callable] = {
    "random": lambda seed=0: (lambda rng: lambda obs, t: int(rng.integers(0, len(BLOCKS))))(
        np.random.default_rng(seed)),
    "direct": lambda seed=0: lambda obs, t: TERMINATE,  # answer at once, no reasoning block
    "always-reason": lambda seed=0: lambda obs, t: REASON,
    "cot": lambda seed=0: lambda obs, t: REASON if t < 2 else TERMINATE,
    # a hand rule over the rubric: refine a step judged wrong, answer once the rubric says the answer is reached
    "rule": lambda seed=0: lambda obs, t: (REFINE if t and obs[2] == 1 else TERMINATE if t and obs[5] == 3
                                           else DECOMPOSE if t == 0 and obs[3] == 3 else REASON),
}


@AGENTS.register("rlot", reference="Hao et al. 2025, RL of Thoughts, https://arxiv.org/abs/2505.14140",
                 input="environments", output="actions", saveable=True,
                 summary="Dueling Double-DQN navigator (< 3k parameters) choosing the LM's next logic block from its "
                         "7-feature self-evaluation")
class Navigator(BaseEstimator, Pretrained):
    """The RLoT navigator (see the module docstring)."""

    def __init__(self, hidden: int = 32, episodes: int = 3000, lr: float = 0.01, lr_step: int = 1000,
                 gamma: float = 0.9, batch_size: int = 64, buffer_size: int = 500, target_update: int = 50,
                 eps_decay: float = 0.9995, seed: int = 0, progress: bool = False) -> None:
        self.hidden, self.episodes, self.lr, self.lr_step, self.gamma = hidden, episodes, lr, lr_step, gamma
        self.batch_size, self.buffer_size, self.target_update = batch_size, buffer_size, target_update
        self.eps_decay, self.seed, self.progress = eps_decay, seed, progress

    def _net(self, n_features: int, n_actions: int) -> DuelingQ:
        torch.manual_seed(self.seed)
        return DuelingQ(n_features, n_actions, self.hidden)

    def fit(self, env="base"):
        for name in ("hidden", "episodes", "batch_size", "buffer_size", "target_update", "lr_step"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        if not 0 <= self.gamma < 1 or not 0 < self.eps_decay <= 1:
            raise AnytaskError(f"need 0 <= gamma < 1 and 0 < eps_decay <= 1 (got {self.gamma}, {self.eps_decay})")
        env = _make_env(env)
        rng = np.random.default_rng(self.seed)
        self.n_features_in_, self.n_actions_ = int(env.n_features), int(env.n_actions)
        self.net_ = self._net(self.n_features_in_, self.n_actions_)
        target = self._net(self.n_features_in_, self.n_actions_)
        target.load_state_dict(self.net_.state_dict())
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.lr_step, gamma=0.5)
        replay = Replay(self.buffer_size, self.n_features_in_)
        eps, updates, curve = 1.0, 0, []
        lm_env = isinstance(env, LMReasoner)
        for ep in tqdm(range(self.episodes), desc="rlot", disable=not self.progress):
            obs, _ = env.reset(options={"index": ep % len(env)}) if lm_env else env.reset(seed=self.seed * 1_000_003
                                                                                           + ep)
            s, t = _features(obs), 0
            while True:
                eps = max(0.0, eps * self.eps_decay)
                if rng.random() < eps:
                    a = int(rng.integers(0, self.n_actions_))
                else:
                    with torch.no_grad():
                        a = int(self.net_(torch.from_numpy(s)[None]).argmax(1))
                a = first_step_mask(a, t)
                obs2, r, done, _, info = env.step(a)
                s2 = _features(obs2)
                replay.add(s, a, r, float(done), s2)
                if len(replay) >= self.buffer_size:
                    bs, ba, br, bd, bs2 = replay.sample(rng, self.batch_size)
                    y = double_dqn_targets(self.net_, target, br, bd, bs2, self.gamma)
                    q = self.net_(bs).gather(1, ba[:, None]).squeeze(1)
                    loss = nn.functional.mse_loss(q, y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    updates += 1
                    if updates % self.target_update == 0:
                        target.load_state_dict(self.net_.state_dict())
                s, t = s2, t + 1
                if done:
                    curve.append(float(info["correct"]))
                    break
            if updates:
                sched.step()
        self.curve_ = np.asarray(curve)
        self.n_updates_ = updates
        return self

    def q_values(self, obs) -> np.ndarray:
        check_is_fitted(self, "net_")
        x = np.atleast_2d(np.asarray(obs))
        if x.shape[1] != self.n_features_in_:
            raise AnytaskError(f"rubric observations have {x.shape[1]} features; this navigator was trained on "
                               f"{self.n_features_in_}")
        if x.size and (x.min() < 0 or x.max() > 3):
            raise AnytaskError("rubric features take the values 0 (not parsed), 1 False, 2 Unsure (Maybe), 3 True")
        with torch.no_grad():
            return self.net_(torch.from_numpy(_features(x))).numpy()

    def predict(self, obs) -> np.ndarray:
        """The greedy block for each rubric observation (no first-step mask; ``act`` applies it)."""
        return self.q_values(obs).argmax(1)

    def act(self, obs, t: int = 1) -> int:
        a = int(self.predict(obs)[0])
        return first_step_mask(a, t)

    def evaluate(self, env="base", episodes: int | None = None, seed: int = 0, progress: bool = False) -> dict:
        return evaluate_policy(env, self.act, episodes, seed, progress)

    def n_parameters(self) -> int:
        check_is_fitted(self, "net_")
        return sum(p.numel() for p in self.net_.parameters())

    def _get_state(self):
        check_is_fitted(self, "net_")
        extra = {"n_features": self.n_features_in_, "n_actions": self.n_actions_, "n_updates": self.n_updates_,
                 "curve": self.curve_.tolist()}
        return extra, {k: v.detach().clone() for k, v in self.net_.state_dict().items()}

    @classmethod
    def _from_state(cls, params, extra, tensors):
        nav = cls(**params)
        nav.n_features_in_, nav.n_actions_ = int(extra["n_features"]), int(extra["n_actions"])
        nav.n_updates_, nav.curve_ = int(extra["n_updates"]), np.asarray(extra["curve"])
        nav.net_ = nav._net(nav.n_features_in_, nav.n_actions_)
        nav.net_.load_state_dict(tensors)
        return nav
