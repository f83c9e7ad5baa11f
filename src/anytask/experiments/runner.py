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


def run_bench(tasks, heads, shots, seeds, *, backbone: str | None = None, backbone_identity: str | None = None,
              cache_dir: str | None = None, progress: bool = True) -> dict:
    heads = list(dict.fromkeys([BASELINE, *heads]))
    for name in heads:
        HEADS.get(name)  # fail early on unknown names, with suggestions
    rows, skipped = [], []
    total = len(tasks) * len(shots) * len(seeds) * len(heads)
    bar = tqdm(total=total, desc="bench", unit="fit", disable=not progress)
    for task in tasks:
        for k in shots:
            for seed in seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # short classes are reported in the task stats
                    idx = task.shot_indices(k, seed)
                X, y = task.X_train[idx], task.y_train[idx]
                for name in heads:
                    bar.set_postfix_str(f"{task.name} k={k} s={seed} {name}", refresh=False)
                    head = _head_for(name, task, backbone, cache_dir)
                    if head is None:
                        skipped.append({"task": task.name, "head": name, "reason": "needs a text task (label names or raw texts)"})
                        bar.update()
                        continue
                    X_fit, X_eval = X, task.X_test
                    if reads_texts(name, head.get_params(deep=False)):  # heads that run a backbone on raw texts
                        X_fit, X_eval = [task.texts_train[i] for i in idx], list(task.texts_test)
                    t0 = time.perf_counter()
                    head.fit(X_fit, y)
                    t1 = time.perf_counter()
                    proba = head.predict_proba(X_eval)
                    pred = head.classes_[np.argmax(proba, axis=1)]
                    t2 = time.perf_counter()
                    rows.append({
                        "task": task.name, "head": name, "shots_per_class": int(k), "seed": int(seed),
                        "accuracy": float(np.mean(pred == task.y_test)),
                        "macro_f1": float(f1_score(task.y_test, pred, average="macro")),
                        "ece": expected_calibration_error(proba, pred == task.y_test),
                        "fit_seconds": round(t1 - t0, 6), "predict_seconds": round(t2 - t1, 6),
                        "n_train": int(len(idx)), "n_test": int(len(task.y_test)),
                    })
                    bar.update()
    bar.close()
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
