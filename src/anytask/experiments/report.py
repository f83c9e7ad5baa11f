"""Summaries of a result file: mean and spread over seeds, a Markdown table and a PNG plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def summarize(results: dict, metric: str = "accuracy") -> dict[tuple[str, str, int], tuple[float, float, int]]:
    """(task, head, shots) -> (mean, std over seeds, n seeds)."""
    groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for row in results["results"]:
        groups[(row["task"], row["head"], row["shots_per_class"])].append(row[metric])
    return {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in groups.items()}


def task_average(results: dict, metric: str = "accuracy") -> dict[tuple[str, int], tuple[float, float]]:
    """(head, shots) -> mean over tasks of the per-task seed mean, and the spread of the per-seed averages."""
    per_seed: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    for row in results["results"]:
        per_seed[(row["head"], row["shots_per_class"], row["seed"])].append(row[metric])
    n_tasks = len(results["tasks"])
    out: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (head, k, _seed), values in per_seed.items():
        if len(values) == n_tasks:  # heads skipped on some tasks get no average
            out[(head, k)].append(float(np.mean(values)))
    return {key: (float(np.mean(v)), float(np.std(v))) for key, v in out.items()}


def markdown(results: dict, metric: str = "accuracy") -> str:
    stats = summarize(results, metric)
    avg = task_average(results, metric)
    heads, shots = results["heads"], results["shots"]
    one = len(results["seeds"]) == 1  # one seed has no spread: print the value alone
    spread = "one seed, so no spread" if one else f"mean ± std over {len(results['seeds'])} seeds"
    lines = [f"{metric} ({spread}; the same test rows for every head and seed)", ""]
    header = "| task | head | " + " | ".join(f"k={k}" for k in shots) + " |"
    lines += [header, "|" + "---|" * (len(shots) + 2)]
    for task in results["tasks"]:
        for head in heads:
            cells = []
            for k in shots:
                if (task, head, k) in stats:
                    m, s, _ = stats[(task, head, k)]
                    cells.append(f"{m:.3f}" if one else f"{m:.3f} ± {s:.3f}")
                else:
                    cells.append("—")
            lines.append(f"| {task} | {head} | " + " | ".join(cells) + " |")
    for head in heads:
        cells = [("—" if (head, k) not in avg else f"**{avg[(head, k)][0]:.3f}**" if one
                  else f"**{avg[(head, k)][0]:.3f}** ± {avg[(head, k)][1]:.3f}") for k in shots]
        lines.append(f"| **average** | {head} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str | Path, metric: str = "accuracy") -> Path:
    from anytask.core.extras import require

    matplotlib = require("matplotlib", "plot", "plotting")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats, avg = summarize(results, metric), task_average(results, metric)
    panels = ["average"] + list(results["tasks"])
    cols = min(4, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharex=True)
    shots = results["shots"]
    for ax, panel in zip(axes.flat, panels):
        for head in results["heads"]:
            if panel == "average":
                pts = [(k, *avg[(head, k)]) for k in shots if (head, k) in avg]
            else:
                pts = [(k, *stats[(panel, head, k)][:2]) for k in shots if (panel, head, k) in stats]
            if pts:
                k, m, s = map(np.array, zip(*pts))
                ax.errorbar(k, m, yerr=s, marker="o", ms=3, capsize=2, label=head,
                            lw=2.2 if head == results.get("baseline") else 1.3)
        ax.set_title(panel, fontsize=10, fontweight="bold" if panel == "average" else None)
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots, [str(k) for k in shots])
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(metric)
    for ax in axes[-1]:
        ax.set_xlabel("examples per class")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{results.get('backbone') or 'features'}: {metric} vs examples per class", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
