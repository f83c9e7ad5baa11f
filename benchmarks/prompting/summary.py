"""Base-to-novel tables and plot from benchmarks/prompting/base_to_novel*.json (mean ± std over seeds, %).

    python benchmarks/prompting/summary.py [RESULT.json ...]

Rows of every file given (default: base_to_novel.json and base_to_novel_large.json, the run of the
two larger tasks with lower step caps) are pooled; the tables go to the first file's .md.

Writes base_to_novel.md (the average over tasks per shots and method, then every task) and
base_to_novel.png (harmonic mean per task and method at each k).
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

METHODS = ("zero_shot", "prompts", "promptsrc", "linear_probe", "setfit")


def ms(v) -> str:
    v = [x for x in v if x is not None]
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" if v else "–"


def _cells(runs: list[dict]):
    r = {"command": " && ".join(run["command"] for run in runs), "rows": [row for run in runs for row in run["rows"]]}
    cells = defaultdict(lambda: defaultdict(list))  # (task, k, method) -> metric -> per-seed values
    per_seed = defaultdict(lambda: defaultdict(list))  # (k, method, seed) -> metric -> per-task values
    for row in r["rows"]:
        for m in ("base", "novel", "hm", "seconds"):
            cells[(row["task"], row["shots"], row["method"])][m].append(row.get(m))
            per_seed[(row["shots"], row["method"], row["seed"])][m].append(row.get(m))
    tasks = sorted({t for t, _, _ in cells})
    shots = sorted({k for _, k, _ in cells})
    methods = [m for m in METHODS if any(key[2] == m for key in cells)]
    return r, cells, per_seed, tasks, shots, methods


def render(runs: list[dict]) -> str:
    """The Markdown tables (average over tasks, then every task) from the result files' contents."""
    r, cells, per_seed, tasks, shots, methods = _cells(runs)
    n_tasks = {key: len(v["base"]) for key, v in per_seed.items()}
    head = ["| k per base class | method | base | novel | HM | adaptation seconds per task |", "|---|---|---|---|---|---|"]
    avg = []
    for k in shots:
        for m in methods:
            seeds = [s for (kk, mm, s) in per_seed if kk == k and mm == m and n_tasks[(kk, mm, s)] == len(tasks)]
            if not seeds:
                continue
            mean = {x: [np.mean(per_seed[(k, m, s)][x]) if None not in per_seed[(k, m, s)][x] else None
                        for s in seeds] for x in ("base", "novel", "hm", "seconds")}
            secs = "0" if m == "zero_shot" else f"{np.mean(mean['seconds']):.1f}"
            avg.append(f"| {k} | {m} | {ms(mean['base'])} | {ms(mean['novel'])} | {ms(mean['hm'])} | {secs} |")
    detail = ["| task | k | method | base | novel | HM | adaptation seconds |", "|---|---|---|---|---|---|---|"]
    for (task, k, method), c in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], METHODS.index(kv[0][2]))):
        secs = f"{np.mean(c['seconds']):.1f}" if method != "zero_shot" else "0"
        detail.append(f"| {task} | {k} | {method} | {ms(c['base'])} | {ms(c['novel'])} | {ms(c['hm'])} | {secs} |")
    return (f"Average over {len(tasks)} tasks ({', '.join(tasks)}); ± is the std over seeds of the task average.\n\n"
            + "\n".join(head + avg) + "\n\nPer task (± std over seeds):\n\n" + "\n".join(detail))


def main(*paths) -> None:
    """Print the tables and write the plot; docs/results/prompting.md is written by benchmarks/docs.py."""
    paths = paths or [p for p in ("benchmarks/prompting/base_to_novel.json",
                                  "benchmarks/prompting/base_to_novel_large.json") if Path(p).exists()]
    runs = [json.loads(Path(p).read_text()) for p in paths]
    path = paths[0]
    print(render(runs))
    _, cells, _, tasks, shots, methods = _cells(runs)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hm_methods = [m for m in methods if m != "linear_probe"]
    fig, axes = plt.subplots(1, len(shots), figsize=(4.5 * len(shots), 3.6), sharey=True, squeeze=False)
    width = 0.8 / len(hm_methods)
    for ax, k in zip(axes[0], shots):
        for i, m in enumerate(hm_methods):
            vals = [100 * np.mean(cells[(t, k, m)]["hm"]) if cells[(t, k, m)]["hm"] else np.nan for t in tasks]
            ax.bar(np.arange(len(tasks)) + i * width, vals, width, label=m)
        ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks, rotation=20)
        ax.set_title(f"{k} shots per base class")
    axes[0][0].set_ylabel("harmonic mean of base and novel accuracy (%)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(path).with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
