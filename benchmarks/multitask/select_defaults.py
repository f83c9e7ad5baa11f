"""How the multi-task defaults were chosen, on training rows only: 3-fold cross-validation inside each task's 64
training rows (seed 0) of the 11 text tasks, for MMoE and TaskExpert, over ``skip`` (a per-task linear map of
the input added to the logits: of all views, of the last view only, or none) and, with ``--steps``, the number
of steps. The bench's linear probe is
cross-validated the same way.

    python benchmarks/multitask/select_defaults.py --out benchmarks/multitask/select_defaults.json

No test row is read; the result file says which setting had the best mean CV accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import features  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(features.ROOT.parent / "shared" / "data" / "text"))
    ap.add_argument("--methods", default="mmoe,taskexpert")
    ap.add_argument("--size", default="64")
    ap.add_argument("--steps", default="300", help="comma-separated step counts to try")
    ap.add_argument("--skips", default="true,false,last", help="skip settings to try: true, false, last")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(features.ROOT / "benchmarks" / "multitask" / "select_defaults.json"))
    args = ap.parse_args()
    import torch

    from anytask.methods.heads import HEADS
    from anytask.methods.multitask import MULTITASK

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = features.load(args.data_root, [args.size], [0], progress=False)
    tasks = {n: features.task_arrays(data, n, args.size, 0) for n in features.TASKS}
    folds = {n: np.random.default_rng(i).permutation(len(y)) % 3 for i, (n, (_, y)) in enumerate(tasks.items())}
    skips = {"true": True, "false": False, "last": "last"}
    grid = {"skip": [skips[v] for v in args.skips.split(",")], "steps": [int(s) for s in args.steps.split(",")]}
    rows = []
    for f in range(3):
        train = {n: (X[folds[n] != f], y[folds[n] != f]) for n, (X, y) in tasks.items()}
        val = {n: (X[folds[n] == f], y[folds[n] == f]) for n, (X, y) in tasks.items()}
        lp = np.mean([np.mean(HEADS.get("linear_probe")().fit(train[n][0][:, -1], train[n][1]).predict(val[n][0][:, -1])
                              == val[n][1]) for n in tasks])
        rows.append({"method": "linear_probe", "fold": f, "cv_accuracy": float(lp)})
        for method, (skip, steps) in itertools.product(args.methods.split(","), itertools.product(*grid.values())):
            m = MULTITASK.get(method)(skip=skip, steps=steps, seed=0).fit(train)
            acc = float(np.mean([m.score(*val[n], task=n) for n in tasks]))
            rows.append({"method": method, "skip": skip, "steps": steps, "fold": f, "cv_accuracy": acc})
            print(f"fold {f} {method} skip={skip} steps={steps}: {acc:.4f} (linear probe {lp:.4f})", flush=True)
    summary = {}
    for r in rows:
        key = r["method"] + ("" if r["method"] == "linear_probe" else f"|skip={r['skip']}|steps={r['steps']}")
        summary.setdefault(key, []).append(r["cv_accuracy"])
    summary = {k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))} for k, v in summary.items()}
    Path(args.out).write_text(json.dumps({"benchmark": "multitask-select", "command": " ".join(["python"] + sys.argv),
                                          "size": args.size, "grid": grid, "rows": rows, "summary": summary,
                                          "wall_seconds": round(time.perf_counter() - start, 1)}, indent=1))
    for k, v in summary.items():
        print(f"{k:40s} {v['mean']:.4f} ± {v['sd']:.4f}")


if __name__ == "__main__":
    main()
