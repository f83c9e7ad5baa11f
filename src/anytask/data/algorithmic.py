"""Algorithmic sequence tasks for length-generalisation studies (task hinting, card 28).

Every example is one token sequence ``[task token, a_1 … a_n, SEP, output …, EOS]`` over a vocabulary of
``values`` integers plus the special tokens below, and a boolean ``loss`` mask marking the positions whose
*next* token is a target (the model reads the prefix and is scored on the output only).

* ``sort``: the output is ``a`` sorted ascending.
* ``successor`` (the paper's best hint): the output is the pairs ``a_i, succ(a_i)`` in input order, where
  ``succ(a_i)`` is the element after ``a_i`` in the sorted multiset (a duplicate's successor is its copy; the
  maximum's is ``END``). Only the successors are targets — the copies ``a_i`` are read, not predicted, so the
  hint asks the "next in sorted order" question at every element in input order (a reconstruction; the card
  does not fix this detail).
* ``count``: the pairs ``a_i, #{j: a_j < a_i}`` (a hint the paper found much weaker); counts are value tokens,
  so ``values`` must exceed the longest input.
* ``increment`` (the paper's second task): the input is the decimal digits of a number, most significant first
  (value tokens 0-9; leading zeros allowed, the width is the input's), the output the digits of the number + 1
  at the same width, or one digit wider when every digit is 9. Inputs are drawn so that carries of every
  length appear: the number of trailing 9s is uniform in 0..n (with uniform digits a carry past two or three
  digits would almost never be tested).
* ``carry`` (a hint for increment; the card does not name the paper's, so this one is a reconstruction in the
  successor hint's format): the pairs ``d_i, c_i`` in input order, with ``c_i = 1`` when the + 1 reaches digit
  ``i`` (every digit after it is 9) and 0 otherwise; only the ``c_i`` are targets.

``batch(task, n_examples, lengths, values, rng)`` draws lengths uniformly from ``lengths`` and pads to the
longest sequence (padding is ``PAD`` with a false loss mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError

TASKS = ("sort", "successor", "count", "increment", "carry")
DIGIT_TASKS = ("increment", "carry")
# new task tokens go last so that the ids of the earlier specials never change
SPECIALS = ("sort", "successor", "count", "sep", "eos", "end", "pad", "increment", "carry")


@dataclass(frozen=True)
class Vocab:
    """Token ids: the values ``0 … values-1`` then one id per special."""

    values: int

    def __getitem__(self, name: str) -> int:
        return self.values + SPECIALS.index(name)

    def __len__(self) -> int:
        return self.values + len(SPECIALS)


@dataclass(frozen=True)
class SeqBatch:
    tokens: np.ndarray  # (B, T) int64
    loss: np.ndarray  # (B, T) bool: the token at t+1 is a target
    lengths: np.ndarray  # (B,) input lengths n
    task: str


def successors(a: np.ndarray, end: int) -> np.ndarray:
    """``succ(a_i)`` for each element in input order: the next element of the sorted multiset (a duplicate's is
    its copy), ``end`` for the last one."""
    order = np.argsort(a, kind="stable")
    nxt = np.empty(len(a), dtype=np.int64)
    nxt[order[:-1]] = a[order[1:]]
    nxt[order[-1]] = end
    return nxt


def carries(d: np.ndarray) -> np.ndarray:
    """``c_i`` for each digit of ``d`` (most significant first): 1 where adding one reaches digit ``i``."""
    nines = np.asarray(d) == 9
    # the + 1 reaches the last digit, and digit i when every digit after i is 9
    after = np.concatenate([np.cumprod(nines[::-1])[::-1][1:], [1]])
    return after.astype(np.int64)


def increment(d: np.ndarray) -> list[int]:
    """The digits of the number ``d`` + 1 (most significant first), one digit wider only on overflow."""
    d = np.asarray(d, dtype=np.int64)
    out = (d + carries(d)) % 10
    return ([1] if (d == 9).all() else []) + out.tolist()


def example(task: str, a, values: int) -> tuple[list[int], list[bool]]:
    """One sequence and its loss mask for input ``a``."""
    if task not in TASKS:
        raise AnytaskError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    voc = Vocab(values)
    a = np.asarray(a, dtype=np.int64)
    if a.ndim != 1 or not len(a) or a.min() < 0 or a.max() >= values:
        raise AnytaskError(f"an input must be a non-empty 1-D sequence of integers in 0..{values - 1}")
    if task in DIGIT_TASKS and a.max() > 9:
        raise AnytaskError(f"{task} reads decimal digits: every input token must be in 0..9")
    head = [voc[task], *a.tolist(), voc["sep"]]
    if task == "sort":
        out, scored = np.sort(a).tolist() + [voc["eos"]], [True] * (len(a) + 1)
    elif task == "increment":
        out = increment(a) + [voc["eos"]]
        scored = [True] * len(out)
    else:
        if task == "count" and len(a) > values:
            raise AnytaskError(f"the count hint writes counts as value tokens: n={len(a)} needs values > n")
        target = (successors(a, voc["end"]) if task == "successor" else carries(a) if task == "carry"
                  else (a[None, :] < a[:, None]).sum(1))
        out = [int(x) for pair in zip(a, target) for x in pair] + [voc["eos"]]
        scored = [False, True] * len(a) + [True]
    tokens = head + out
    # loss[t] says whether tokens[t + 1] is a target: the last input position (SEP) predicts the first output
    loss = [False] * (len(head) - 1) + scored + [False]
    return tokens, loss


def draw(task: str, n: int, values: int, rng, *, repeats: bool = False) -> np.ndarray:
    """One input of length ``n``: distinct values unless ``repeats``; for the digit tasks, ``n`` digits with a
    uniform number of trailing 9s (``repeats`` does not apply)."""
    if task in DIGIT_TASKS:
        if values < 10:
            raise AnytaskError(f"{task} needs the ten digit tokens: values={values} must be >= 10")
        d = rng.integers(0, 10, n)
        nines = int(rng.integers(0, n + 1))
        d[n - nines:] = 9
        if nines < n:
            d[n - nines - 1] = rng.integers(0, 9)  # not a 9, so the run of 9s is exactly `nines` long
        return d.astype(np.int64)
    if repeats:
        return rng.integers(0, values, n).astype(np.int64)
    if n > values:
        raise AnytaskError(f"n={n} distinct values need values >= n (values={values}); or set repeats=True")
    return rng.choice(values, size=n, replace=False).astype(np.int64)


def batch(task: str, n_examples: int, lengths, values: int, rng, *, repeats: bool = False) -> SeqBatch:
    """``n_examples`` examples with input lengths drawn uniformly from ``lengths`` (an int or ``(lo, hi)``
    inclusive)."""
    lo, hi = (lengths, lengths) if isinstance(lengths, (int, np.integer)) else lengths
    if not 1 <= lo <= hi:
        raise AnytaskError(f"lengths={lengths!r}: give n >= 1 or a range (lo, hi) with 1 <= lo <= hi")
    voc = Vocab(values)
    ns = rng.integers(lo, hi + 1, n_examples)
    rows = [example(task, draw(task, int(n), values, rng, repeats=repeats), values) for n in ns]
    width = max(len(t) for t, _ in rows)
    tokens = np.full((n_examples, width), voc["pad"], dtype=np.int64)
    loss = np.zeros((n_examples, width), dtype=bool)
    for i, (t, m) in enumerate(rows):
        tokens[i, :len(t)], loss[i, :len(m)] = t, m
    return SeqBatch(tokens, loss, ns.astype(np.int64), task)
