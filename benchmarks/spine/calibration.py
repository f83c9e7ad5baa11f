"""Calibration of the default head: linear_probe's probabilities with and without temperature scaling.

    python benchmarks/spine/calibration.py --data-root ../shared/data/text --out benchmarks/spine/calibration.json

The same draws as the few-shot benchmark (11 tasks, k = 4..64 per class, 5 seeds, ≤ 1,000 fixed test rows);
both settings fitted in the same process on the same rows. Temperature scaling chooses T on the support set
by stratified cross-validation (no test row is used), so accuracy is unchanged and only the probabilities
move. Reports accuracy, top-label ECE (15 bins), log loss and fit seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from anytask.backbones import Embedder, get_backbone
from anytask.core.io import write_file_atomic
from anytask.core.results import command_line
from anytask.experiments import prepare_tasks
from anytask.experiments.runner import expected_calibration_error
from anytask.methods.heads import create_head

TASKS = "sst2,rotten_tomatoes,sms_spam,youtube,imdb,ag_news,dbpedia,subj,trec,financial_phrasebank,banking77"
SETTINGS = {"uncalibrated (C=1)": {"calibration": None}, "temperature-scaled (default)": {}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=TASKS)
    ap.add_argument("--shots", default="4,8,16,32,64")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/spine/calibration.json")
    args = ap.parse_args()
    shots, seeds = [int(k) for k in args.shots.split(",")], list(range(args.seeds))
    tasks, _ = prepare_tasks(args.tasks.split(","), data_root=args.data_root, shots=shots, seeds=seeds,
                             max_test=args.max_test, embedder=Embedder(get_backbone("minilm")), progress=False)
    rows = []
    for task in tasks:
        for k in shots:
            for seed in seeds:
                idx = task.shot_indices(k, seed)
                for name, params in SETTINGS.items():
                    start = time.perf_counter()
                    head = create_head("linear_probe", **params).fit(task.X_train[idx], task.y_train[idx])
                    fit_s = time.perf_counter() - start
                    proba = head.predict_proba(task.X_test)
                    truth = np.searchsorted(head.classes_, task.y_test)
                    correct = head.classes_[proba.argmax(1)] == task.y_test
                    rows.append({"task": task.name, "shots": k, "seed": seed, "setting": name,
                                 "accuracy": float(correct.mean()),
                                 "ece": expected_calibration_error(proba, correct),
                                 "log_loss": float(-np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth],
                                                                           1e-12, None)))),
                                 "temperature": float(getattr(head, "temperature_", 1.0)),
                                 "fit_seconds": round(fit_s, 4)})
        print(task.name, flush=True)
    results = {"command": command_line("python benchmarks/spine/calibration.py"), "tasks": args.tasks.split(","),
               "shots": shots, "seeds": seeds, "max_test": args.max_test, "rows": rows}
    write_file_atomic(args.out, (json.dumps(results, indent=1) + "\n").encode())
    print(render(results))


def render(r: dict) -> str:
    """Mean over tasks of each metric, ± std over seeds of that mean, per setting and k."""
    lines = ["| setting | k | accuracy | ECE (lower is better) | log loss | fit seconds |", "|---|---|---|---|---|---|"]
    for name in SETTINGS:
        for k in r["shots"]:
            per_seed = {m: [np.mean([x[m] for x in r["rows"] if x["setting"] == name and x["shots"] == k
                                     and x["seed"] == s]) for s in r["seeds"]]
                        for m in ("accuracy", "ece", "log_loss", "fit_seconds")}
            lines.append(f"| {name} | {k} | " + " | ".join(
                f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in per_seed.values()) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
