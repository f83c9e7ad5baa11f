"""Agents: loops that reuse one frozen language model across open-ended tasks. The family's one LM interface:

``TextLM`` answers two kinds of request, each tagged with a ``kind`` (e.g. ``"block:reason"``, ``"rubric"``) so
cost is counted per kind and a ``RoutedLM`` can send each kind to a different answerer:

* ``generate(prompt, kind=, max_new_tokens=, seed=, prefix=) -> str`` — free text (``prefix`` starts the reply);
* ``rate(prompt, questions, options, kind=) -> (Q, C) array`` — a log-score for every option of every question
  (a text that continues the reply) asked after the same prompt (for an LM: summed log-probabilities of
  ``" " + option`` after prompt + question, the prompt's cache computed once).

Answerers:

* ``BackboneLM(backbone="smollm2")`` — the project's causal-LM backbone through its chat template; greedy unless a
  seed asks for sampling; an optional on-disk cache of answers keyed by the backbone's identity, the request and
  its settings (benchmarks rerun for free; a cached answer is counted as a call with zero seconds);
* ``RuleLM(respond, rate)`` — a rule-based oracle behind the same interface (a function of the kind and prompt);
* ``RoutedLM(routes, default)`` — per-kind routing, so a loop runs with the LM, the oracle, or a mix.

``CallStats`` counts calls, seconds and unparsable answers per kind; ``first_int`` is the strict parser with a
counted fallback the loops use (an answer that does not parse is never a crash).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

AGENTS = Registry("agent", family="agents")


class CallStats:
    """Calls, seconds and parse failures per request kind."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.parse_failures: dict[str, int] = defaultdict(int)
        self.cached: dict[str, int] = defaultdict(int)  # calls answered from a cache (no seconds spent)

    def add(self, kind: str, seconds: float, cached: bool = False) -> None:
        self.calls[kind] += 1
        self.seconds[kind] += seconds
        self.cached[kind] += int(cached)

    def seconds_per_call(self) -> dict[str, float]:
        """Mean seconds of the calls of each kind that were computed, not read from a cache."""
        return {k: self.seconds[k] / (n - self.cached[k]) for k, n in self.calls.items() if n > self.cached[k]}

    @property
    def total_calls(self) -> int:
        return int(sum(self.calls.values()))

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    def summary(self) -> dict:
        return {"calls": dict(self.calls), "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "parse_failures": dict(self.parse_failures), "cached": dict(self.cached),
                "total_calls": self.total_calls, "total_seconds": round(self.total_seconds, 3)}


_INT = re.compile(r"-?\d[\d,]*")


def first_int(text: str, stats: CallStats | None = None, kind: str = "answer") -> int | None:
    """The first integer in ``text`` (thousands commas allowed), or None — counted in ``stats`` as a parse failure
    of ``kind`` — when there is none."""
    m = _INT.search(text or "")
    if m is None:
        if stats is not None:
            stats.parse_failures[kind] += 1
        return None
    return int(m.group().replace(",", ""))


class TextLM:
    """The interface every agent talks to (see the module docstring)."""

    name = "lm"

    def __init__(self) -> None:
        self.stats = CallStats()

    def generate(self, prompt: str, *, kind: str = "generate", max_new_tokens: int = 48, seed: int | None = None,
                 prefix: str = "") -> str:
        raise NotImplementedError

    def rate(self, prompt: str, questions: Sequence[str], options: Sequence[str], *, kind: str = "rate") -> np.ndarray:
        raise NotImplementedError

    def choose(self, prompt: str, options: Sequence[str], *, kind: str = "choose") -> int:
        """The index of the best-rated option for one question (the prompt itself)."""
        return int(np.argmax(self.rate(prompt, [""], options, kind=kind)[0]))


class BackboneLM(TextLM):
    """A causal-LM backbone (``smollm2`` by default) behind ``TextLM``."""

    def __init__(self, backbone="smollm2", *, cache_dir: str | Path | None = None, chat: bool = True) -> None:
        super().__init__()
        if isinstance(backbone, str):
            from anytask.backbones import create_backbone

            backbone = create_backbone(backbone)
        if not hasattr(backbone, "generate") or not hasattr(backbone, "score_choices"):
            raise AnytaskError(f"{getattr(backbone, 'config', backbone)} is not a causal LM: agents need one that "
                               "generates and scores (smollm2, hf-causal:<folder>, tiny-causal)")
        self.lm, self.chat = backbone, chat
        self.name = backbone.config.name
        self.cache_path = Path(cache_dir) / "lm_answers.jsonl" if cache_dir is not None else None
        self._cache: dict[str, object] = {}
        if self.cache_path is not None and self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._cache[row["key"]] = row["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line from an interrupted run: that answer is asked again

    def _prompt(self, prompt: str, prefix: str = "") -> str:
        return (self.lm.chat_prompt(prompt) if self.chat else prompt) + prefix

    def _cached(self, kind: str, request: dict, compute: Callable[[], object]):
        key = hashlib.sha256(json.dumps([self.lm.identity, request], sort_keys=True).encode()).hexdigest()
        if key in self._cache:
            self.stats.add(kind, 0.0, cached=True)
            return self._cache[key]
        start = time.perf_counter()
        value = compute()
        self.stats.add(kind, time.perf_counter() - start)
        self._cache[key] = value
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.cache_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "value": value}) + "\n")
        return value

    def generate(self, prompt, *, kind="generate", max_new_tokens=48, seed=None, prefix=""):
        text = self._prompt(prompt, prefix)
        method = "greedy" if seed is None else "sample"
        request = {"op": "generate", "text": text, "n": max_new_tokens, "seed": seed}
        return self._cached(kind, request, lambda: self.lm.generate(
            text, max_new_tokens=max_new_tokens, method=method, seed=seed or 0, temperature=0.8, top_p=0.95))

    def rate(self, prompt, questions, options, *, kind="rate"):
        if not options:
            raise AnytaskError("rate() needs at least one option")
        text = self._prompt(prompt)
        request = {"op": "rate", "text": text, "q": list(questions), "o": list(options)}

        def compute():
            scores, _ = self.lm.score_choices(text, list(questions), [f" {o}" for o in options])
            return scores.tolist()

        return np.asarray(self._cached(kind, request, compute), dtype=np.float64)


class RuleLM(TextLM):
    """A rule-based oracle behind ``TextLM``: ``respond(kind, prompt) -> str`` and
    ``rate(kind, prompt, questions, options) -> (Q, C) array`` (either may be None when a loop never asks it)."""

    def __init__(self, respond: Callable | None = None, rate: Callable | None = None, name: str = "oracle") -> None:
        super().__init__()
        self._respond, self._rate, self.name = respond, rate, name

    def generate(self, prompt, *, kind="generate", max_new_tokens=48, seed=None, prefix=""):
        if self._respond is None:
            raise AnytaskError(f"the {self.name} oracle does not answer {kind!r} requests; route them to an LM")
        start = time.perf_counter()
        out = str(self._respond(kind, prompt))
        self.stats.add(kind, time.perf_counter() - start)
        return out

    def rate(self, prompt, questions, options, *, kind="rate"):
        if self._rate is None:
            raise AnytaskError(f"the {self.name} oracle does not rate {kind!r} requests; route them to an LM")
        start = time.perf_counter()
        out = np.asarray(self._rate(kind, prompt, list(questions), list(options)), dtype=np.float64)
        self.stats.add(kind, time.perf_counter() - start)
        if out.shape != (len(questions), len(options)):
            raise AnytaskError(f"the {self.name} oracle rated {kind!r} with shape {out.shape}, expected "
                               f"{(len(questions), len(options))}")
        return out


class RoutedLM(TextLM):
    """Send each request kind to an answerer: ``routes`` maps a kind or a kind prefix ending in ``:`` (e.g.
    ``"block:"``) to a ``TextLM``; the rest go to ``default``. Stats are kept by each answerer and here."""

    def __init__(self, routes: dict[str, TextLM], default: TextLM) -> None:
        super().__init__()
        self.routes, self.default = dict(routes), default
        self.name = "+".join(sorted({default.name, *(lm.name for lm in self.routes.values())}))

    def _for(self, kind: str) -> TextLM:
        if kind in self.routes:
            return self.routes[kind]
        for key, lm in self.routes.items():
            if key.endswith(":") and kind.startswith(key):
                return lm
        return self.default

    def generate(self, prompt, *, kind="generate", max_new_tokens=48, seed=None, prefix=""):
        start = time.perf_counter()
        out = self._for(kind).generate(prompt, kind=kind, max_new_tokens=max_new_tokens, seed=seed, prefix=prefix)
        self.stats.add(kind, time.perf_counter() - start)
        return out

    def rate(self, prompt, questions, options, *, kind="rate"):
        start = time.perf_counter()
        out = self._for(kind).rate(prompt, questions, options, kind=kind)
        self.stats.add(kind, time.perf_counter() - start)
        return out
