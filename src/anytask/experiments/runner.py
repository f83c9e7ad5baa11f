"""Run tasks x heads x shots x seeds and collect one result row per fit.

The baseline (``linear_probe``) is always part of the run, on the same samples, so
every comparison in a result file is side by side in one process.
"""

from __future__ import annotations

import platform
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from anytask.methods.heads import HEADS, create_head_for, reads_texts

BASELINE = "linear_probe"


def expected_calibration_error(proba: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: |accuracy - confidence| per equal-width confidence bin, weighted by bin size."""
    conf = proba.max(axis=1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() * abs(correct[members].mean() - conf[members].mean())
    return float(total / len(conf))


def _head_for(name: str, task, backbone: str | None, cache_dir: str | None):
    caps = HEADS.caps(name)
    if caps.needs_backbone and not task.is_text:
        return None  # heads that embed label text or read backbone concepts need a text task
    if caps.input == "texts" and task.texts_train is None:
        return None
    params = {}
    if caps.label_names and task.descriptions:
        params["descriptions"] = task.descriptions
    return create_head_for(name, backbone, cache_dir, **params)


def result_row(task, head: str, k: int, seed: int, proba: np.ndarray, classes, *, fit_seconds: float,
               predict_seconds: float, n_train: int) -> dict:
    """One row of a result file: a head's test-set probabilities (columns in ``classes`` order) scored."""
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    return {
        "task": task.name, "head": head, "shots_per_class": int(k), "seed": int(seed),
        "accuracy": float(np.mean(pred == task.y_test)),
        "macro_f1": float(f1_score(task.y_test, pred, average="macro")),
        "ece": expected_calibration_error(proba, pred == task.y_test),
        "fit_seconds": round(fit_seconds, 6), "predict_seconds": round(predict_seconds, 6),
        "n_train": int(n_train), "n_test": int(len(task.y_test)),
    }


def run_cell(task, k: int, seed: int, heads: list[str], *, backbone: str | None = None,
             cache_dir: str | None = None, on_fit=None) -> tuple[list[dict], list[dict]]:
    """Every head on one (task, shots, seed) sample, the same sample for each: the unit of work that
    ``run_bench`` loops over here and ``anytask.experiments.distributed`` sends to Ray. Returns (rows, skipped);
    ``on_fit(name)`` is called after each head (progress)."""
    rows, skipped = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short classes are reported in the task stats
        idx = task.shot_indices(k, seed)
    X, y = task.X_train[idx], task.y_train[idx]
    for name in heads:
        head = _head_for(name, task, backbone, cache_dir)
        if head is None:
            skipped.append({"task": task.name, "head": name, "reason": "needs a text task (label names or raw texts)"})
        else:
            X_fit, X_eval = X, task.X_test
            if reads_texts(name, head.get_params(deep=False)):  # heads that run a backbone on raw texts
                X_fit, X_eval = [task.texts_train[i] for i in idx], list(task.texts_test)
            t0 = time.perf_counter()
            head.fit(X_fit, y)
            t1 = time.perf_counter()
            proba = head.predict_proba(X_eval)
            rows.append(result_row(task, name, k, seed, proba, head.classes_, fit_seconds=t1 - t0,
                                   predict_seconds=time.perf_counter() - t1, n_train=len(idx)))
        if on_fit is not None:
            on_fit(name)
    return rows, skipped


def bench_heads(heads) -> list[str]:
    """The heads of a run: the baseline first, then the others, each once; unknown names fail here."""
    heads = list(dict.fromkeys([BASELINE, *heads]))
    for name in heads:
        HEADS.get(name)  # fail early on unknown names, with suggestions
    return heads


def run_bench(tasks, heads, shots, seeds, *, backbone: str | None = None, backbone_identity: str | None = None,
              cache_dir: str | None = None, progress: bool = True, cells=None) -> dict:
    """``cells`` (optional) runs the grid elsewhere: called with the list of (task, k, seed) and the heads, it
    returns one (rows, skipped) per cell in that order (``anytask.experiments.distributed.ray_cells``)."""
    heads = bench_heads(heads)
    grid = [(task, int(k), int(seed)) for task in tasks for k in shots for seed in seeds]
    if cells is not None:
        done = cells(grid, heads)
    else:
        bar = tqdm(total=len(grid) * len(heads), desc="bench", unit="fit", disable=not progress)
        done = []
        for task, k, seed in grid:
            bar.set_postfix_str(f"{task.name} k={k} s={seed}", refresh=False)
            done.append(run_cell(task, k, seed, heads, backbone=backbone, cache_dir=cache_dir,
                                 on_fit=lambda _: bar.update()))
        bar.close()
    rows = [row for cell_rows, _ in done for row in cell_rows]
    skipped = [s for _, cell_skipped in done for s in cell_skipped]
    return {
        "backbone": backbone,
        "backbone_identity": backbone_identity,
        "baseline": BASELINE,
        "heads": heads,
        "tasks": [t.name for t in tasks],
        "shots": [int(k) for k in shots],
        "seeds": [int(s) for s in seeds],
        "results": rows,
        "skipped": skipped,
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
