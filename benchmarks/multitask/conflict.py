"""Multi-task methods against task conflict, on real MiniLM embeddings with synthetic label functions:

    python benchmarks/multitask/conflict.py --out benchmarks/multitask/conflict.json

Inputs: the sentence embeddings of the 11 shared tasks' test rows (about 5,500 texts, pooled). Four binary
tasks whose label directions (in the whitened top-32 principal components) have pairwise cosine rho
(``anytask.data.multitask.conflict_tasks``; rho < 0: alternate tasks' shared part is reversed, i.e. conflicting
evidence); 5 % label noise; 64 training rows per task (disjoint), 1,000 common test rows; seeds 0-2. Every
method at the library defaults, DTRN also without TIM and without TRM (the card's ablations), and two
independent linear probes per task in the same run: the bench's ``linear_probe`` (C = 1) and ``lr_cv``
(logistic regression with C by 3-fold cross-validation on the task's training rows, the stronger baseline).
DTRN's claim (card 30): its gain over shared-bottom / MMoE / PLE grows
with conflict.
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

METHODS = ["independent", "shared_bottom", "mmoe", "ple", "dtrn", "dtrn-no-tim", "dtrn-no-trm", "taskexpert",
           "router"]
VARIANTS = {"dtrn-no-tim": ("dtrn", {"tim": False}), "dtrn-no-trm": ("dtrn", {"trm": False})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from the result file")
    ap.add_argument("--data-root", default=str(features.ROOT.parent / "shared" / "data" / "text"))
    ap.add_argument("--rhos", default="-0.8,-0.4,0,0.4,0.8,1.0")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(features.ROOT / "benchmarks" / "multitask" / "conflict.json"))
    args = ap.parse_args()
    if args.plot_only:
        return plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    import torch

    from anytask.data.multitask import conflict_tasks
    from anytask.methods.heads import HEADS
    from anytask.methods.multitask import MULTITASK

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = features.load(args.data_root, ["64"], [0], progress=False)
    X = np.concatenate([data[n]["test"][:, -1] for n in features.TASKS]).astype(np.float32)   # (N, 384)
    T, n = args.tasks, args.n_train
    rows = []
    for rho in map(float, args.rhos.split(",")):
        for seed in range(args.seeds):
            Ys, _ = conflict_tasks(X, T, rho, seed=seed, flip=0.05)
            perm = np.random.default_rng(seed).permutation(len(X))
            test = perm[:1000]
            train = {f"task{t}": perm[1000 + t * n:1000 + (t + 1) * n] for t in range(T)}
            tasks = {name: (X[idx], Ys[t][idx]) for t, (name, idx) in enumerate(train.items())}
            for t, name in enumerate(tasks):
                for label, pred in [("linear_probe", HEADS.get("linear_probe")().fit(*tasks[name]).predict(X[test])),
                                    ("lr_cv", features.lr_cv(*tasks[name], X[test], seed=seed))]:
                    rows.append({"method": label, "rho": rho, "seed": seed, "task": name,
                                 "accuracy": float(np.mean(pred == Ys[t][test]))})
            for method in args.methods.split(","):
                base, extra = VARIANTS.get(method, (method, {}))
                t0 = time.perf_counter()
                m = MULTITASK.get(base)(seed=seed, **extra).fit(tasks)
                fit = time.perf_counter() - t0
                for t, name in enumerate(tasks):
                    rows.append({"method": method, "rho": rho, "seed": seed, "task": name, "fit_seconds": round(fit, 2),
                                 "accuracy": m.score(X[test], Ys[t][test], task=name)})
            means = {m: np.mean([r["accuracy"] for r in rows if r["rho"] == rho and r["seed"] == seed
                                 and r["method"] == m]) for m in ["linear_probe", "lr_cv"] + args.methods.split(",")}
            print(f"rho {rho:+.1f} seed {seed}: " + " ".join(f"{k} {v:.3f}" for k, v in means.items()), flush=True)
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['rho']}|{r['method']}", {}).setdefault(r["seed"], []).append(r["accuracy"])
    summary = {k: {"mean": float(np.mean([np.mean(v) for v in s.values()])),
                   "sd": float(np.std([np.mean(v) for v in s.values()], ddof=1)) if len(s) > 1 else 0.0}
               for k, s in summary.items()}
    result = {"benchmark": "multitask-conflict", "command": " ".join(["python"] + sys.argv), "tasks": T,
              "n_train": n, "rhos": [float(r) for r in args.rhos.split(",")], "seeds": list(range(args.seeds)),
              "methods": ["linear_probe", "lr_cv"] + args.methods.split(","), "rows": rows, "summary": summary,
              "wall_seconds": round(time.perf_counter() - start, 1),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    try:
        plot(result, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rhos = result["rhos"]
    colours = plt.cm.tab20(np.linspace(0, 1, len(result["methods"])))
    for m, c in zip(result["methods"], colours):
        axes[0].plot(rhos, [100 * result["summary"][f"{r}|{m}"]["mean"] for r in rhos], marker="o", label=m, color=c,
                     lw=2 if m in ("dtrn", "lr_cv") else 1, ls="--" if m in ("linear_probe", "lr_cv") else "-")
    axes[0].set_xlabel("task agreement rho (negative: conflicting)")
    axes[0].set_ylabel("mean accuracy (%)")
    axes[0].legend(fontsize=7)
    for other in ["shared_bottom", "mmoe", "ple"]:
        if other in result["methods"]:
            gain = [100 * (result["summary"][f"{r}|dtrn"]["mean"] - result["summary"][f"{r}|{other}"]["mean"])
                    for r in rhos]
            axes[1].plot(rhos, gain, marker="o", label=f"dtrn - {other}")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("task agreement rho")
    axes[1].set_ylabel("points")
    axes[1].set_title("DTRN's gain (card 30: grows with conflict)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
