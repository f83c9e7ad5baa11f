"""Seeded text degradations: the low-quality versions of clean texts that real inputs often are (typos, stray
characters, broken casing), for testing robustness and for RLQ-style distillation (``methods/distill/rlq.py``).

``degrade(texts, kind, rate, seed)`` is deterministic for a seed and leaves the input list unchanged:

- ``typo``: a fraction ``rate`` of the letters gets one of four keyboard mistakes: a neighbouring key instead,
  swapped with the next letter, doubled, or dropped;
- ``chars``: a fraction ``rate`` of the characters is replaced by a random printable character;
- ``case``: every word is lower-, upper- or title-cased at random, and ``rate`` of the letters flip case;
- ``mixed``: each text gets one of the three, chosen at random.
"""

from __future__ import annotations

import random
import string
from typing import Sequence

from anytask.core.errors import AnytaskError

KINDS = ("typo", "chars", "case", "mixed")
_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS = {}
for _r, _row in enumerate(_ROWS):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        near += [_ROWS[rr][j] for rr in (_r - 1, _r + 1) if 0 <= rr < 3 for j in (_c, _c + 1) if j < len(_ROWS[rr])]
        _NEIGHBOURS[_ch] = near


def _typo(text: str, rate: float, rng: random.Random) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch.isalpha() and rng.random() < rate:
            op = rng.randrange(4)
            if op == 0 and ch.lower() in _NEIGHBOURS:
                sub = rng.choice(_NEIGHBOURS[ch.lower()])
                out.append(sub.upper() if ch.isupper() else sub)
            elif op == 1 and i + 1 < len(text):
                out += [text[i + 1], ch]
                i += 1
            elif op == 2:
                out += [ch, ch]
            # op 3 (or a swap at the end): dropped
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _chars(text: str, rate: float, rng: random.Random) -> str:
    pool = string.ascii_letters + string.digits + string.punctuation
    return "".join(rng.choice(pool) if not ch.isspace() and rng.random() < rate else ch for ch in text)


def _case(text: str, rate: float, rng: random.Random) -> str:
    words = [rng.choice((str.lower, str.upper, str.title))(w) for w in text.split(" ")]
    return "".join(ch.swapcase() if ch.isalpha() and rng.random() < rate else ch for ch in " ".join(words))


_FNS = {"typo": _typo, "chars": _chars, "case": _case}


def degrade(texts: Sequence[str], kind: str = "mixed", rate: float = 0.1, seed: int = 0) -> list[str]:
    """Low-quality copies of ``texts`` (see the module docstring); the same seed gives the same copies."""
    if kind not in KINDS:
        raise AnytaskError(f"unknown degradation {kind!r}; use one of {', '.join(KINDS)}")
    if not 0.0 <= rate <= 1.0:
        raise AnytaskError(f"rate must be between 0 and 1, got {rate}")
    if isinstance(texts, str):
        raise AnytaskError("degrade takes a list of texts, not one string")
    rng = random.Random(seed)
    out = []
    for text in texts:
        if not isinstance(text, str):
            raise AnytaskError(f"degrade takes texts; got {type(text).__name__}")
        fn = _FNS[rng.choice(("typo", "chars", "case"))] if kind == "mixed" else _FNS[kind]
        out.append(fn(text, rate, rng))
    return out
