"""Few-shot tables and plot from benchmarks/prompting/few_shot.json.

    python benchmarks/prompting/few_shot_summary.py [benchmarks/prompting/few_shot.json]

Writes few_shot.md: per k, each method's accuracy averaged over the tasks (± std over seeds of
that average), its gap to SetFit, its adaptation seconds per task and the ratio to SetFit's; then
every task. few_shot.png: accuracy against adaptation time. Only (k, seed) sweeps that cover every
task enter the averages.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

METHODS = ("linear_probe", "prompts", "promptsrc", "setfit")


def _stats(r: dict):
    acc = defaultdict(dict)  # (k, method, seed) -> task -> accuracy
    sec = defaultdict(dict)
    for row in r["rows"]:
        acc[(row["shots"], row["method"], row["seed"])][row["task"]] = row["accuracy"]
        sec[(row["shots"], row["method"], row["seed"])][row["task"]] = row["fit_seconds"]
    tasks = sorted({t for v in acc.values() for t in v})
    shots = sorted({k for k, _, _ in acc})
    methods = [m for m in METHODS if any(key[1] == m for key in acc)]
    complete = {key for key, v in acc.items() if len(v) == len(tasks)}

    lines = ["| k per class | method | accuracy (mean of tasks) | vs SetFit (points) | seconds per task | time vs SetFit | seeds |",
             "|---|---|---|---|---|---|---|"]
    points = []
    for k in shots:
        seeds = sorted({s for (kk, m, s) in complete if kk == k and all((k, mm, s) in complete for mm in methods)})
        if not seeds:
            continue
        stats = {}
        for m in methods:
            a = [100 * np.mean(list(acc[(k, m, s)].values())) for s in seeds]
            t = [np.mean(list(sec[(k, m, s)].values())) for s in seeds]
            stats[m] = (np.mean(a), np.std(a), np.mean(t), a)
        for m in methods:
            a_mean, a_std, t_mean, a = stats[m]
            gap = ratio = "–"
            if "setfit" in stats and m != "setfit":
                diffs = np.subtract(a, stats["setfit"][3])
                gap = f"{np.mean(diffs):+.1f} ± {np.std(diffs):.1f}"
                ratio = f"{t_mean / stats['setfit'][2]:.3f}×"
            lines.append(f"| {k} | {m} | {a_mean:.1f} ± {a_std:.1f} | {gap} | {t_mean:.1f} | {ratio} | {len(seeds)} |")
            points.append((k, m, a_mean, t_mean))
    detail = ["| task | k | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for task in tasks:
        for k in shots:
            cells = []
            for m in methods:
                v = [acc[key][task] for key in acc if key[0] == k and key[1] == m and task in acc[key]]
                t = [sec[key][task] for key in sec if key[0] == k and key[1] == m and task in sec[key]]
                cells.append(f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f} ({np.mean(t):.0f} s, n={len(v)})"
                             if v else "–")
            detail.append(f"| {task} | {k} | " + " | ".join(cells) + " |")
    text = (f"Mean over {len(tasks)} tasks ({', '.join(tasks)}); ± is the std over seeds.\n\n" + "\n".join(lines)
            + "\n\nPer task: accuracy % mean ± std over seeds (adaptation seconds, number of seeds):\n\n"
            + "\n".join(detail))
    return text, points, methods, tasks


def render(r: dict) -> str:
    return _stats(r)[0]


def main(path="benchmarks/prompting/few_shot.json") -> None:
    """Print the tables and write the plot; docs/results/prompting.md is written by benchmarks/docs.py."""
    text, points, methods, tasks = _stats(json.loads(Path(path).read_text()))
    print(text)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        pts = sorted((t, a, k) for k, mm, a, t in points if mm == m)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m)
            for t, a, k in pts:
                ax.annotate(f"k={k}", (t, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("adaptation wall time per task (s, 2 CPU cores)")
    ax.set_ylabel(f"accuracy, mean of {len(tasks)} tasks (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(path).with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
