"""Multi-task methods inside ``anytask bench``: every task of the run trained *together*, per (shots, seed).

``run_multitask(tasks, methods, shots, seeds)`` draws each task's k-shot sample exactly as the per-task heads
do (``Task.shot_indices``), fits one model of each multi-task method on all of them at once, and scores each
task on its fixed test rows. Rows have the bench's schema with ``head = "mt:<method>"`` (``fit_seconds`` is the
joint fit, the same on every task's row), so the bench's table, average and plot include them beside the
per-task ``linear_probe`` baseline.
"""

from __future__ import annotations

import time
import warnings

from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.experiments.runner import result_row

PREFIX = "mt:"


def multitask_methods(names) -> list[str]:
    """Check the names against the registry (errors suggest close matches); returns them as given."""
    from anytask.methods.multitask import MULTITASK

    for name in names:
        MULTITASK.get(name)
    return list(dict.fromkeys(names))


def run_multitask(tasks, methods, shots, seeds, *, progress: bool = True) -> list[dict]:
    from anytask.methods.multitask import MULTITASK

    if len(tasks) < 2:
        raise AnytaskError("--multitask trains the run's tasks together; give at least two --tasks")
    widths = {t.name: t.X_train.shape[1] for t in tasks}
    if len(set(widths.values())) > 1:
        raise AnytaskError(f"--multitask needs every task in one feature space, got widths {widths}; use text tasks "
                           "embedded by one backbone (not sklearn: sets of different widths)")
    rows = []
    bar = tqdm(total=len(shots) * len(seeds) * len(methods), desc="multitask", unit="fit", disable=not progress)
    for k in shots:
        for seed in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # short classes are reported in the task stats
                idx = {t.name: t.shot_indices(int(k), int(seed)) for t in tasks}
            data = {t.name: (t.X_train[idx[t.name]], t.y_train[idx[t.name]]) for t in tasks}
            for name in methods:
                t0 = time.perf_counter()
                model = MULTITASK.get(name)(seed=int(seed)).fit(data)
                fit = time.perf_counter() - t0
                for t in tasks:
                    t1 = time.perf_counter()
                    proba = model.predict_proba(t.X_test, task=t.name)
                    rows.append(result_row(t, PREFIX + name, k, seed, proba, model.classes_[t.name],
                                           fit_seconds=fit, predict_seconds=time.perf_counter() - t1,
                                           n_train=len(idx[t.name])))
                bar.update()
    bar.close()
    return rows
