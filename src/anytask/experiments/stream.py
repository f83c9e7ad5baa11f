"""Run a stream through a learner: accuracy on every task seen after each task, boundaries, memory."""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from anytask.data.streams import make_stream  # noqa: F401  (re-exported: the runner's input)
from anytask.methods.continual import LEARNERS, make_learner

def boundary_stats(true_starts: list[int], detected: list[int], total: int) -> dict:
    """Delay of the first detection after each true boundary; every other detection is a false alarm."""
    ends = true_starts[1:] + [total + 1]
    delays, matched = [], set()
    for start, end in zip(true_starts, ends):
        hits = [d for d in detected if start <= d < end]
        if hits:
            delays.append(hits[0] - start)
            matched.add(hits[0])
    return {"true": true_starts, "detected": detected, "found": len(delays), "missed": len(true_starts) - len(delays),
            "mean_delay_batches": round(float(np.mean(delays)), 2) if delays else None,
            "false_alarms": len([d for d in detected if d not in matched])}


def _accuracy(learner, task, method: str) -> float:
    pred = learner.predict(task.X_test, task=task.name if method == "oracle" else None)  # EWC predicts untold
    return float(np.mean(pred == task.y_test))


def run_stream(method: str, tasks, *, seed: int = 0, batch_size: int = 32, progress: bool = False,
               **params) -> dict:
    names = list(dict.fromkeys(t.name for t in tasks))
    learner = make_learner(method, n_tasks=len(names), seed=seed, **params)
    use_ids = LEARNERS.caps(method).task_ids
    matrix, starts, batches = [], [], 0
    start_time = time.perf_counter()
    by_name = {t.name: t for t in tasks}  # a recurring task is evaluated on its one test set
    for n_done, task in enumerate(tqdm(tasks, desc=method, disable=not progress, leave=False), 1):
        starts.append(batches + 1)
        for i in range(0, len(task.X_train), batch_size):
            learner.partial_fit(task.X_train[i : i + batch_size], task.y_train[i : i + batch_size],
                                task=task.name if use_ids else None)
            batches += 1
        if hasattr(learner, "selector_"):
            learner.selector_ = None  # refit the router on the buffers for this evaluation
        seen = dict.fromkeys(t.name for t in tasks[:n_done])
        matrix.append({name: _accuracy(learner, by_name[name], method) for name in seen})
    learner.finish()
    final = {name: _accuracy(learner, t, method) for name, t in by_name.items()}
    best = {n: max(r.get(n, 0.0) for r in matrix) for n in names}
    out = {"method": method, "seed": seed, "tasks": [t.name for t in tasks],
           "final_accuracy": final, "average_accuracy": round(float(np.mean(list(final.values()))), 4),
           "forgetting": round(float(np.mean([best[n] - final[n] for n in names[:-1]])) if len(names) > 1 else 0.0, 4),
           "accuracy_after_each_task": matrix, "parameters": learner.n_parameters(),
           "seconds": round(time.perf_counter() - start_time, 2)}
    if method == "tame":
        detected = [e["batch"] for e in learner.events_[1:]]
        out["boundaries"] = boundary_stats(starts[1:], detected, batches)
        out["experts"] = len(learner.experts_)
        out["events"] = learner.events_
        out["memory_examples"] = sum(len(b) for b in learner.buffers_)
    if method == "replay":
        out["memory_examples"] = len(learner.buffer_)
    return out
