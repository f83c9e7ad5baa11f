"""The 11 shared text tasks trained jointly, every multi-task method against independent linear probes on the
same frozen MiniLM features, in one run:

    python benchmarks/multitask/text.py --out benchmarks/multitask/text.json

Inputs: the mean-pooled states of MiniLM layers 2, 4, 6 of each text (``(N, 3, 384)``; the last view is the
sentence embedding). Sizes: ``64`` and ``512`` random training rows per task and ``16pc`` (16 per class, the
small-data setting); seeds 0-2; the first 500 test rows of each task. Baselines, each task alone, on the
sentence embedding and on the three views concatenated (``_views``): ``linear_probe`` (the bench's head: logistic
regression, C = 1) and ``lr_cv`` (C by 3-fold cross-validation on the training rows: the stronger baseline).
``guarded:<base>`` is the per-task guard over that base. Multi-task methods run at the library defaults (``skip``
chosen by ``benchmarks/multitask/select_defaults.py`` on training rows only; nothing here looks at test rows to
choose). Reported: mean accuracy over tasks, each task's change against each baseline (``lr_cv`` is the one the
goal is judged on), the worst task, fit time, parameters.
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

BASELINES = ["linear_probe", "linear_probe_views", "lr_cv", "lr_cv_views"]
METHODS = ["independent", "shared_bottom", "mmoe", "ple", "dtrn", "taskexpert", "router"]


def linear_probe(X, y, Xt):
    from anytask.methods.heads import HEADS

    return HEADS.get("linear_probe")().fit(X, y).predict(Xt)


def run_cell(data: dict, size: str, seed: int, methods: list[str], threads: int) -> list[dict]:
    import torch

    from anytask.methods.multitask import MULTITASK

    torch.set_num_threads(threads)
    tasks = {n: features.task_arrays(data, n, size, seed) for n in features.TASKS}
    rows = []
    for n, (X, y) in tasks.items():
        Xt, yt = data[n]["test"], data[n]["y_test"]
        last, flat = (lambda A: A[:, -1]), (lambda A: A.reshape(len(A), -1))
        for label, fit in [("linear_probe", lambda: linear_probe(last(X), y, last(Xt))),
                           ("linear_probe_views", lambda: linear_probe(flat(X), y, flat(Xt))),
                           ("lr_cv", lambda: features.lr_cv(last(X), y, last(Xt), seed=seed)),
                           ("lr_cv_views", lambda: features.lr_cv(flat(X), y, flat(Xt), seed=seed))]:
            t0 = time.perf_counter()
            pred = fit()
            rows.append({"method": label, "size": size, "seed": seed, "task": n, "n_train": int(len(y)),
                         "accuracy": float(np.mean(pred == yt)), "fit_seconds": round(time.perf_counter() - t0, 3)})
    for name in methods:
        t0 = time.perf_counter()
        kind, _, base = name.partition(":")  # "guarded:router": the guard over that base
        model = MULTITASK.get(kind)(seed=seed, **({"base": base} if base else {})).fit(tasks)
        fit = time.perf_counter() - t0
        for n in features.TASKS:
            acc = model.score(data[n]["test"], data[n]["y_test"], task=n)
            rows.append({"method": name, "size": size, "seed": seed, "task": n, "n_train": int(len(tasks[n][1])),
                         "accuracy": float(acc), "fit_seconds": round(fit, 2), "parameters": model.n_parameters()})
            if hasattr(model, "gate_stats"):  # TaskExpert: are the gates dynamic and task-specific (card 36)?
                g = model.gate_stats(data[n]["test"], task=n)
                rows[-1].update(gate_entropy=g["entropy"], gate_max_entropy=g["max_entropy"],
                                memory_weight=float(g["mean_gate"][:, -1].mean()))
            if hasattr(model, "choice_"):  # the guard: what cross-validation chose for this task, and its scores
                rows[-1].update(choice=model.choice_[n], cv_accuracy=model.cv_accuracy_[n])
        mean = np.mean([r["accuracy"] for r in rows if r["method"] == name])
        base = np.mean([r["accuracy"] for r in rows if r["method"] == "linear_probe"])
        print(f"{size} seed {seed} {name}: mean {mean:.4f} (linear probe {base:.4f}) in {fit:.0f}s", flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for size in sorted({r["size"] for r in rows}):
        base = {b: {(r["task"], r["seed"]): r["accuracy"] for r in rows if r["size"] == size and r["method"] == b}
                for b in BASELINES}
        for m in sorted({r["method"] for r in rows if r["size"] == size}):
            rs = [r for r in rows if r["size"] == size and r["method"] == m]
            seeds = sorted({r["seed"] for r in rs})
            per_seed = [np.mean([r["accuracy"] for r in rs if r["seed"] == s]) for s in seeds]
            entry = {"size": size, "method": m, "seeds": len(seeds), "mean_accuracy": float(np.mean(per_seed)),
                     "sd": float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else 0.0,
                     "fit_seconds": float(np.mean([r["fit_seconds"] for r in rs if r["task"] == features.TASKS[0]])),
                     "parameters": rs[0].get("parameters")}
            for b in ("linear_probe", "lr_cv", "lr_cv_views"):
                if not base[b]:
                    continue
                delta = {t: float(np.mean([r["accuracy"] - base[b][(t, r["seed"])] for r in rs if r["task"] == t]))
                         for t in features.TASKS if any(r["task"] == t for r in rs)}
                worst = min(delta, key=delta.get)
                entry[f"vs_{b}"] = {"delta": float(np.mean(list(delta.values()))), "task_delta": delta,
                                    "worst_task": worst, "worst_delta": delta[worst],
                                    "tasks_losing_over_1pt": sum(v < -0.01 for v in delta.values())}
            out[f"{size}|{m}"] = entry
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = result["sizes"]
    methods = ["lr_cv_views"] + result["methods"]
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.8 / len(sizes)
    for j, size in enumerate(sizes):
        vals = [100 * result["summary"].get(f"{size}|{m}", {}).get("vs_lr_cv", {}).get("delta", np.nan)
                for m in methods]
        ax.bar(np.arange(len(methods)) + j * w, vals, w, label=f"{size} per task" if not size.endswith("pc")
               else f"{size[:-2]} per class")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(methods)) + w * (len(sizes) - 1) / 2, methods, rotation=20)
    ax.set_ylabel("mean accuracy - lr_cv (points)")
    ax.set_title("11 text tasks trained jointly on frozen MiniLM views")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", default=str(features.ROOT.parent / "shared" / "data" / "text"))
    ap.add_argument("--sizes", default="64,512,16pc")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(features.ROOT / "benchmarks" / "multitask" / "text.json"))
    ap.add_argument("--merge", default=None, help="a result file of this script run with other --sizes (in parallel, "
                    "say): its rows and command join --out's, and the summary is rebuilt")
    args = ap.parse_args()
    sizes, seeds, methods = args.sizes.split(","), list(range(args.seeds)), args.methods.split(",")
    out = Path(args.out)
    start = time.perf_counter()
    data = features.load(args.data_root, sizes, seeds)
    done = json.loads(out.read_text()) if out.exists() else {}
    rows = [r for r in done.get("rows", []) if r["method"] in methods + BASELINES]
    for size in sizes:
        for seed in seeds:
            if any(r["size"] == size and r["seed"] == seed and r["method"] == methods[-1] for r in rows):
                continue
            rows = [r for r in rows if not (r["size"] == size and r["seed"] == seed)] + \
                run_cell(data, size, seed, methods, args.threads)
            result = {"benchmark": "multitask-text", "command": " ".join(["python"] + sys.argv),
                      "tasks": features.TASKS, "sizes": sizes, "seeds": seeds, "methods": methods,
                      "layers": list(features.LAYERS), "rows": rows, "summary": summarise(rows),
                      "wall_seconds": round(time.perf_counter() - start + done.get("wall_seconds", 0), 1),
                      "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                                      "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
            out.write_text(json.dumps(result, indent=1))
    result = json.loads(out.read_text())
    if args.merge:
        other = json.loads(Path(args.merge).read_text())
        have = {(r["size"], r["seed"]) for r in result["rows"]}
        result["rows"] += [r for r in other["rows"] if (r["size"], r["seed"]) not in have]
        result["sizes"] = list(dict.fromkeys(result["sizes"] + other["sizes"]))
        result["command"] = "\n".join(dict.fromkeys(result["command"].split("\n") + [other["command"]]))
        result["wall_seconds"] = max(result["wall_seconds"], other["wall_seconds"])
    result["summary"] = summarise(result["rows"])  # the summary always from the rows (resumed runs included)
    out.write_text(json.dumps(result, indent=1))
    try:
        plot(result, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
    for k, v in result["summary"].items():
        d = v.get("vs_lr_cv", {})
        print(f"{k:30s} {v['mean_accuracy']:.4f} ± {v['sd']:.4f}  vs lr_cv {100 * d.get('delta', 0):+.2f}  worst "
              f"{d.get('worst_task')} {100 * d.get('worst_delta', 0):+.2f}  losing>1pt "
              f"{d.get('tasks_losing_over_1pt')}")


if __name__ == "__main__":
    main()
