"""Tables and plots for stream results: final accuracy, forgetting, boundaries, memory."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def _group(results: dict) -> dict:
    groups = defaultdict(list)
    for run in results["runs"]:
        groups[run["method"]].append(run)
    return groups


def stream_markdown(results: dict) -> str:
    lines = [f"stream `{results['stream']}`: mean ± std over {results['seeds']} seeds x orders "
             f"{', '.join(results['orders'])}", "",
             "| method | average accuracy | forgetting | experts | boundaries found | mean delay (batches) "
             "| false alarms | parameters |", "|---|---|---|---|---|---|---|---|"]
    for method, runs in _group(results).items():
        acc = [r["average_accuracy"] for r in runs]
        fgt = [r["forgetting"] for r in runs]
        cells = [f"{np.mean(acc):.3f} ± {np.std(acc):.3f}", f"{np.mean(fgt):.3f} ± {np.std(fgt):.3f}"]
        if all("boundaries" in r for r in runs):
            b = [r["boundaries"] for r in runs]
            delays = [x["mean_delay_batches"] for x in b if x["mean_delay_batches"] is not None]
            cells += [f"{np.mean([r['experts'] for r in runs]):.1f} (distinct tasks: "
                      f"{len(set(runs[0]['tasks']))})",
                      f"{sum(x['found'] for x in b)}/{sum(len(x['true']) for x in b)}",
                      f"{np.mean(delays):.1f}" if delays else "—",
                      f"{np.mean([x['false_alarms'] for x in b]):.1f}"]
        else:
            cells += ["—", "—", "—", "—"]
        cells.append(f"{int(np.mean([r['parameters'] for r in runs])):,}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stream_plot(results: dict, path) -> Path:
    from anytask.core.extras import require

    matplotlib = require("matplotlib", "plot", "plotting")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, runs in _group(results).items():
        curves = []
        for r in runs:  # mean accuracy over the tasks seen so far, after each task
            curves.append([np.mean(list(row.values())) for row in r["accuracy_after_each_task"]])
        curves = np.array(curves)
        x = np.arange(1, curves.shape[1] + 1)
        ax.errorbar(x, curves.mean(0), yerr=curves.std(0), marker="o", ms=3, capsize=2, label=method)
    ax.set_xlabel("tasks seen")
    ax.set_ylabel("mean accuracy over tasks seen")
    ax.set_title(f"stream: {results['stream']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
