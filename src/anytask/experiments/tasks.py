"""Benchmark tasks: the train pool and a fixed test subset, embedded once through the cache.

Task names are folders of the data root (text, embedded by the backbone), ``sklearn:<name>``
(numeric features shipped with scikit-learn) or ``synthetic:topics`` (text the project makes).
The test subset (at most ``max_test`` rows) depends only on the task name, and every
k-shot sample only on (task, shots, seed); so every head and seed sees the same test set.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from anytask.data import LABEL_DESCRIPTIONS, eval_indices, k_shot_indices, load_dataset, task_seed
from anytask.core.errors import AnytaskError


@dataclass(frozen=True)
class Task:
    name: str
    X_train: np.ndarray  # (N_train, D) features; rows never sampled are zeros (see ``sampled``)
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    is_text: bool
    descriptions: dict = field(default_factory=dict)
    texts_train: tuple | None = None  # raw texts, for heads that run the backbone themselves (input="texts" heads)
    texts_test: tuple | None = None

    def shot_indices(self, shots: int, seed: int) -> np.ndarray:
        return k_shot_indices(self.y_train, shots, task_seed(self.name, shots, seed))


def prepare_tasks(names, *, data_root=None, shots=(4,), seeds=(0,), max_test: int | None = 1000,
                  embedder=None, progress: bool = True) -> tuple[list[Task], dict]:
    """Load every task and embed exactly the rows any (shots, seed) draw or the test set uses."""
    tasks, stats = [], {"texts_embedded": 0, "embed_seconds": 0.0}
    for name in tqdm(names, desc="load tasks", disable=not progress, leave=False):
        train, test = load_dataset(name, data_root=data_root)
        test = test.subset(eval_indices(name, len(test), max_test))
        counts = {c: int(n) for c, n in zip(*np.unique(train.y.astype(str), return_counts=True))}
        for k in shots:
            short = {c: n for c, n in counts.items() if n < k}
            if short:  # every draw of those classes takes all they have: k is then a cap, not a count
                stats.setdefault("short_classes", []).append({"task": name, "shots": int(k), "classes": short})
        if not train.is_text:
            tasks.append(Task(name, np.asarray(train.X, np.float32), train.y, np.asarray(test.X, np.float32),
                              test.y, is_text=False))
            continue
        if embedder is None:
            raise AnytaskError(f"task {name!r} is text; a backbone is needed to embed it")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded above, once per (task, k), instead of once per draw
            needed = sorted({int(i) for k in shots for s in seeds
                             for i in k_shot_indices(train.y, k, task_seed(name, k, s))})
        start = time.perf_counter()
        X_train = np.zeros((len(train), embedder.dim), np.float32)
        X_train[needed] = embedder.embed([train.X[i] for i in needed])
        X_test = embedder.embed(list(test.X))
        stats["embed_seconds"] += time.perf_counter() - start
        stats["texts_embedded"] += len(needed) + len(test)
        tasks.append(Task(name, X_train, train.y, X_test, test.y, is_text=True,
                          descriptions=LABEL_DESCRIPTIONS.get(name, {}), texts_train=tuple(train.X),
                          texts_test=tuple(test.X)))
    return tasks, stats
