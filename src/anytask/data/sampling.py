"""Balanced k-shot sampling that depends only on (task, shots, seed)."""

from __future__ import annotations

import warnings
import zlib

import numpy as np

from anytask.core.errors import AnytaskError


def task_seed(*parts: object) -> int:
    """A stable 32-bit seed from any parts (not Python's salted ``hash``)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def k_shot_indices(y, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` examples of every class (all of a class's examples if it has fewer).

    Classes are visited in sorted order and each draws from its own generator, so the
    sample for one class does not depend on which other classes exist.
    """
    if k < 1:
        raise AnytaskError(f"shots per class must be >= 1, got {k}")
    y = np.asarray(y)
    if len(y) == 0:
        raise AnytaskError("cannot sample k-shot examples from an empty training set")
    chosen, short = [], []
    for cls in sorted(set(y.tolist()), key=str):
        members = np.flatnonzero(y == cls)
        rng = np.random.default_rng([seed, task_seed(cls)])
        if len(members) < k:
            short.append(f"{cls!r} ({len(members)})")
            chosen.append(members)
        else:
            chosen.append(np.sort(rng.choice(members, size=k, replace=False)))
    if short:
        warnings.warn(f"fewer than {k} examples for class(es) {', '.join(short)}; using all of them", stacklevel=2)
    return np.concatenate(chosen)


def eval_indices(name: str, n: int, max_test: int | None) -> np.ndarray:
    """The fixed test subset of task ``name``: at most ``max_test`` of its ``n`` rows, sorted; depends only
    on the name, so every method and seed is scored on the same rows."""
    if max_test is None or n <= max_test:
        return np.arange(n)
    return np.sort(np.random.default_rng(task_seed(name, "test")).choice(n, size=max_test, replace=False))
