"""The task-token router (UnifiedMLLM's mechanism, card 26): tasks added one at a time to a trained group.

    python benchmarks/multitask/router.py --out benchmarks/multitask/router.json

The 11 shared text tasks, 64 training rows each (the text benchmark's draws), MiniLM layer views; seeds 0-2.
The router is fitted on the first 3 tasks, then ``add_task`` adds the other 8 in order (each: a token, one
expert, a tower, trained alone). Recorded after every addition: each task's test accuracy and the largest
change of any older task's logits (must be exactly 0). Compared with the same router trained on all 11 at once
and with ``lr_cv`` per task (the text benchmark's baselines), in the same run; and the planner's accuracy at
naming the task of a request (nearest task centroid) over all test rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import features  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(features.ROOT.parent / "shared" / "data" / "text"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "router.json"))
    args = ap.parse_args()
    import torch

    from anytask.methods.multitask import MULTITASK

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = features.load(args.data_root, ["64"], list(range(args.seeds)), progress=False)
    names = features.TASKS
    steps, final = [], []
    for seed in range(args.seeds):
        tasks = {n: features.task_arrays(data, n, "64", seed) for n in names}
        test = {n: data[n]["test"] for n in names}
        t0 = time.perf_counter()
        router = MULTITASK.get("router")(seed=seed).fit({n: tasks[n] for n in names[:args.first]})
        fit0 = time.perf_counter() - t0
        for i in range(args.first, len(names) + 1):
            if i > args.first:
                before = {n: router.decision_function(test[n], task=n) for n in names[:i - 1]}
                t0 = time.perf_counter()
                router.add_task(names[i - 1], *tasks[names[i - 1]])
                add_s = time.perf_counter() - t0
                drift = max(float(np.abs(router.decision_function(test[n], task=n) - before[n]).max()) for n in before)
            else:
                add_s, drift = fit0, 0.0
            accs = {n: router.score(test[n], data[n]["y_test"], task=n) for n in names[:i]}
            steps.append({"seed": seed, "n_tasks": i, "added": names[i - 1], "seconds": round(add_s, 2),
                          "old_logit_drift": drift, "accuracy": accs, "parameters": router.n_parameters()})
            print(f"seed {seed} +{names[i - 1]}: mean {np.mean(list(accs.values())):.4f} drift {drift} "
                  f"({add_s:.1f}s)", flush=True)
        X_all = np.concatenate([test[n] for n in names])
        truth = np.concatenate([[n] * len(test[n]) for n in names])
        planner = float(np.mean(router.predict_task(X_all) == truth))
        t0 = time.perf_counter()
        joint = MULTITASK.get("router")(seed=seed).fit(tasks)
        joint_s = time.perf_counter() - t0
        for n in names:
            lr = features.lr_cv(tasks[n][0][:, -1], tasks[n][1], test[n][:, -1], seed=seed)
            final.append({"seed": seed, "task": n, "added_one_at_a_time": steps[-1]["accuracy"][n],
                          "joint": joint.score(test[n], data[n]["y_test"], task=n),
                          "lr_cv": float(np.mean(lr == data[n]["y_test"]))})
        final.append({"seed": seed, "planner_accuracy": planner, "joint_seconds": round(joint_s, 1)})
        print(f"seed {seed}: planner {planner:.3f}; joint router in {joint_s:.0f}s", flush=True)
    per_task = [r for r in final if "task" in r]
    summary = {k: {"mean": float(np.mean([np.mean([r[k] for r in per_task if r["seed"] == s])
                                          for s in range(args.seeds)])),
                   "sd": float(np.std([np.mean([r[k] for r in per_task if r["seed"] == s])
                                       for s in range(args.seeds)], ddof=1)) if args.seeds > 1 else 0.0}
               for k in ("added_one_at_a_time", "joint", "lr_cv")}
    summary["planner_accuracy"] = float(np.mean([r["planner_accuracy"] for r in final if "planner_accuracy" in r]))
    summary["max_old_logit_drift"] = max(s["old_logit_drift"] for s in steps)
    summary["mean_add_seconds"] = float(np.mean([s["seconds"] for s in steps if s["n_tasks"] > args.first]))
    result = {"benchmark": "multitask-router", "command": " ".join(["python"] + sys.argv), "tasks": names,
              "first": args.first, "seeds": list(range(args.seeds)), "steps": steps, "final": final,
              "summary": summary, "wall_seconds": round(time.perf_counter() - start, 1),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
