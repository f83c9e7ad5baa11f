"""Summarise benchmarks/merging/tasks.json: README tables (mean ± std over seeds of the mean over
tasks) in tasks.md and a plot in tasks.png.

    python benchmarks/merging/summary.py [benchmarks/merging/tasks.json]
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def ms(values, pct=True) -> str:
    v = np.asarray(values, dtype=float) * (100 if pct else 1)
    return f"{v.mean():.1f} ± {v.std():.1f}" if pct else f"{v.mean():.3f} ± {v.std():.3f}"


def collect(rows):
    cell = defaultdict(list)  # (mode, measure) -> one value per seed
    for r in rows:
        mode, kind = r.get("mode", "-"), r["kind"]
        if kind in ("zero_shot", "single_task", "addition", "ties", "dare_linear", "atlas_addition"):
            cell[(mode, kind)].append(np.mean(list(r["acc"].values())))
            if "normalized" in r:
                cell[(mode, kind + " normalised")].append(np.mean(list(r["normalized"].values())))
            if "lam" in r:
                cell[(mode, kind + " lambda")].append(r["lam"])
    by_seed = defaultdict(lambda: defaultdict(list))  # per seed means of per-task values
    for r in rows:
        if r["kind"] == "negation":
            s = by_seed[(r["mode"], "negation")][r["seed"]]
            s.append((r["target_acc"], r["target_zero_shot"], r["control_acc"] / r["control_zero_shot"],
                      r["control_acc"] >= 0.95 * r["control_zero_shot"], r["lam"]))
        if r["kind"] == "disentanglement":
            for a, xi in r["xi"].items():
                by_seed[(r["mode"], f"xi alpha={a}")][r["seed"]].append(xi)
    for (mode, what), seeds in by_seed.items():
        if what == "negation":
            arr = [np.array(v, dtype=float) for v in seeds.values()]
            cell[(mode, "negation target")] = [a[:, 0].mean() for a in arr]
            cell[(mode, "negation target zero-shot")] = [a[:, 1].mean() for a in arr]
            cell[(mode, "negation control kept")] = [a[:, 2].mean() for a in arr]
            cell[(mode, "negation control >= 95%")] = [a[:, 3].mean() for a in arr]
        else:
            cell[(mode, what)] = [np.mean(v) for v in seeds.values()]
    return cell


def few_shot(rows):
    out = defaultdict(lambda: defaultdict(list))  # (task, shots) -> method -> values over seeds
    for r in rows:
        if r["kind"] == "few_shot_atlas":
            for m in ("zero_shot", "uniform", "probe", "atlas"):
                out[(r["task"], r["shots"])][m].append(r[m])
    return out


def tables(r) -> str:
    cell = collect(r["rows"])
    seeds = r["seeds_done"]
    lines = [f"{seeds} seed(s); tasks {', '.join(r['tasks'])}; {r['steps']} fine-tuning steps at lr {r['lr']} "
             f"(both modes); mean over tasks, then mean ± std over seeds (accuracy %, test rows).", "",
             "| | standard | linearised |", "|---|---|---|"]
    rows = [("zero-shot (pre-trained)", "zero_shot", True), ("single-task fine-tuned", "single_task", True),
            ("addition (task arithmetic), absolute", "addition", True),
            ("addition, normalised (merged / single-task)", "addition normalised", True),
            ("addition, lambda chosen on validation", "addition lambda", False),
            ("TIES (density 0.2), absolute", "ties", True), ("TIES, normalised", "ties normalised", True),
            ("DARE (density 0.5), absolute", "dare_linear", True), ("DARE, normalised", "dare_linear normalised", True),
            ("aTLAS (per-tensor coefficients), absolute", "atlas_addition", True),
            ("aTLAS, normalised", "atlas_addition normalised", True),
            ("negation: target accuracy", "negation target", True),
            ("negation: target's zero-shot accuracy", "negation target zero-shot", True),
            ("negation: control kept (share of its zero-shot)", "negation control kept", True),
            ("negation: tasks whose control kept >= 95 %", "negation control >= 95%", True),
            ("disentanglement error xi, alpha = 0.5 (lower is better)", "xi alpha=0.5", False),
            ("disentanglement error xi, alpha = 1.0", "xi alpha=1.0", False)]
    for label, key, pct in rows:
        vals = []
        for mode in ("standard", "linearised"):
            v = cell.get((mode, key)) or (cell.get(("-", key)) if key == "zero_shot" else None)
            vals.append(ms(v, pct) if v else "–")
        lines.append(f"| {label} | {vals[0]} | {vals[1]} |")
    fs = few_shot(r["rows"])
    if fs:
        lines += ["", "Few-shot aTLAS on tasks with no vector in the pool (accuracy %, mean ± std over seeds):", "",
                  "| task | k per class | zero-shot | best uniform lambda | logistic regression (frozen) | aTLAS |",
                  "|---|---|---|---|---|---|"]
        for (task, k), m in sorted(fs.items()):
            lines.append(f"| {task} | {k} | {ms(m['zero_shot'])} | {ms(m['uniform'])} | {ms(m['probe'])} | "
                         f"{ms(m['atlas'])} |")
    return "\n".join(lines)


def plot(r, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cell = collect(r["rows"])
    fs = few_shot(r["rows"])
    targets = sorted({t for t, _ in fs})
    fig, axes = plt.subplots(1, 1 + len(targets), figsize=(5 + 4 * len(targets), 4))
    axes = np.atleast_1d(axes)
    kinds = [("single_task", "single"), ("addition", "addition"), ("ties", "TIES"), ("dare_linear", "DARE"),
             ("atlas_addition", "aTLAS")]
    x = np.arange(len(kinds))
    for i, mode in enumerate(("standard", "linearised")):
        vals = [100 * np.mean(cell.get((mode, k)) or [np.nan]) for k, _ in kinds]
        errs = [100 * np.std(cell.get((mode, k)) or [np.nan]) for k, _ in kinds]
        axes[0].bar(x + (i - 0.5) * 0.38, vals, 0.38, yerr=errs, label=mode)
    axes[0].axhline(100 * np.mean(cell[("-", "zero_shot")]), color="grey", ls="--", label="zero-shot")
    axes[0].set_xticks(x, [n for _, n in kinds])
    axes[0].set_ylabel("mean accuracy over tasks (%)")
    axes[0].set_ylim(55, 95)
    axes[0].set_title(f"{len(r['tasks'])} tasks, {r['seeds_done']} seed(s)")
    axes[0].legend(fontsize=8, loc="lower right")
    for ax, task in zip(axes[1:], targets):
        ks = sorted(k for t, k in fs if t == task)
        for m, label in (("zero_shot", "zero-shot"), ("uniform", "uniform lambda"), ("probe", "logistic regression"),
                         ("atlas", "aTLAS")):
            mean = [100 * np.mean(fs[(task, k)][m]) for k in ks]
            std = [100 * np.std(fs[(task, k)][m]) for k in ks]
            ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("examples per class")
        ax.set_title(f"few-shot: {task} (no vector in the pool)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(path="benchmarks/merging/tasks.json") -> None:
    """Print the tables and write the plot; docs/results/merging.md is written by benchmarks/docs.py."""
    r = json.loads(Path(path).read_text())
    print(tables(r))
    plot(r, Path(path).with_suffix(".png"))


if __name__ == "__main__":
    main(*sys.argv[1:])
