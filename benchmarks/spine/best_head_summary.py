"""Tables, goals and the accuracy-against-fit-time plot of benchmarks/spine/best_head.py's result parts.

    python benchmarks/spine/best_head_summary.py [--parts benchmarks/spine/best_head_slow.json,...] [--plot F]

``render(*parts)`` is what ``benchmarks/docs.py`` puts on docs/results/heads.md. Means are over the
tasks of one seed, then mean ± standard deviation over seeds; comparisons between two methods use
only the (task, k, seed) configurations both have, so a partial run still gives paired numbers.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PARTS = ("spine/best_head_slow.json", "spine/best_head_slow_seed1.json", "spine/best_head_fast.json")
ORDER = ["linear_probe", "linear_probe+names", "zero_shot", "icl", "icl+names", "auto", "contrastive", "setfit"]
FAST = ["linear_probe", "linear_probe+names", "zero_shot", "icl", "icl+names"]  # single heads, fit <= 2 s


def _rows(parts) -> list[dict]:
    """Every row once per (task, k, seed, method): the probe is in every part (each part's in-process
    baseline) with the same accuracy; the first part's row is kept."""
    rows, seen = [], set()
    for part in parts:
        for r in part["rows"]:
            key = (r["task"], r["shots"], r["seed"], r["method"])
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows


def _index(rows, key="accuracy") -> dict:
    return {(r["method"], r["task"], r["shots"], r["seed"]): r[key] for r in rows}


def summary(rows, method, k, key="accuracy", configs=None):
    """Mean over tasks per seed, then (mean, std) over seeds, and the number of configurations."""
    by_seed = defaultdict(list)
    for r in rows:
        if r["method"] == method and r["shots"] == k and (configs is None or (r["task"], k, r["seed"]) in configs):
            by_seed[r["seed"]].append(r[key])
    if not by_seed:
        return None
    means = [np.mean(v) for v in by_seed.values()]
    return float(np.mean(means)), float(np.std(means)), sum(len(v) for v in by_seed.values())


def paired(rows, a, b, k, key="accuracy"):
    """Mean of (a - b) over the configurations both have, per seed then over seeds; and the count."""
    idx = _index(rows, key)
    by_seed = defaultdict(list)
    for (m, task, kk, seed), v in idx.items():
        if m == a and kk == k and (b, task, k, seed) in idx:
            by_seed[seed].append(v - idx[(b, task, k, seed)])
    if not by_seed:
        return None
    means = [np.mean(v) for v in by_seed.values()]
    return float(np.mean(means)), float(np.std(means)), sum(len(v) for v in by_seed.values())


def _fmt(s, scale=100, digits=1, full=None):
    """mean ± spread; with ``full``, a count below it is shown: "(22 of 33)"."""
    if s is None:
        return "—"
    text = f"{scale * s[0]:.{digits}f} ± {scale * s[1]:.{digits}f}"
    return text + (f" ({s[2]} of {full})" if full and s[2] < full else "")


def goals(rows, shots) -> list[list[str]]:
    out = []
    for k in (8, 16):
        d = paired(rows, "contrastive", "setfit", k)
        if d is None:
            out.append([f"contrastive ≥ SetFit at k={k}, ≤ 1/3 of its fit time", "not measured", "—"])
            continue
        tc, ts = summary(rows, "contrastive", k, "fit_seconds"), summary(rows, "setfit", k, "fit_seconds")
        ratio = tc[0] / ts[0] if tc and ts else float("nan")
        ok = d[0] >= 0 and ratio <= 1 / 3
        out.append([f"contrastive ≥ SetFit at k={k} (accuracy), fit time ≤ 1/3 of SetFit's",
                    f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f} points over {d[2]} configurations; fit time "
                    f"{tc[0]:.1f} s vs {ts[0]:.1f} s (ratio {ratio:.2f})",
                    "met" if ok else "**missed**"])
    for k in shots:
        best = max((m for m in FAST if summary(rows, m, k)), key=lambda m: summary(rows, m, k)[0], default=None)
        d = paired(rows, "auto", best, k) if best else None
        if d is not None:
            out.append([f"auto ≥ best single fast head at k={k} ({best})", f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f}",
                        "met" if d[0] >= 0 else "**missed**"])
    for k in (4, 8):
        d = paired(rows, "auto", "linear_probe", k)
        if d is not None:
            out.append([f"auto ≥ linear_probe + 2 points at k={k}", f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f}",
                        "met" if d[0] >= 0.02 else "**missed**"])
    for k in shots:
        d = paired(rows, "icl+names", "linear_probe", k)
        if d is not None:
            out.append([f"icl (with label names) ≥ linear_probe + 1 point at k={k}",
                        f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f}", "met" if d[0] >= 0.01 else "**missed**"])
    return out


def _table(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def render(*parts) -> str:
    rows = _rows(parts)
    shots = sorted({r["shots"] for r in rows})
    methods = [m for m in ORDER if any(r["method"] == m for r in rows)]
    tasks = sorted({r["task"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    full = len(tasks) * len(seeds)
    acc = [[f"`{m}`", *[_fmt(summary(rows, m, k), full=full) for k in shots]] for m in methods]
    text = [f"Accuracy (%), mean over the {len(tasks)} tasks, ± its spread over {len(seeds)} seeds; a row run on "
            f"fewer of the {full} (task, seed) draws says how many, and is a mean over those only (— not run):", "",
            _table(["method", *[f"k={k}" for k in shots]], acc), ""]
    gaps = [[f"`{m}`", *[_fmt(paired(rows, m, "linear_probe", k)) for k in shots]] for m in methods
            if m != "linear_probe"]
    text += ["Minus `linear_probe` on the same configurations (points):", "",
             _table(["method", *[f"k={k}" for k in shots]], gaps), ""]
    fit = [[f"`{m}`", *[("—" if summary(rows, m, k, "fit_seconds") is None else
                         f"{summary(rows, m, k, 'fit_seconds')[0]:.1f} / {summary(rows, m, k, 'predict_seconds')[0]:.1f}")
                        for k in shots]] for m in methods]
    text += ["Wall seconds per task, fit / predict (from raw texts: embedding included; predict covers the "
             f"{max(r['n_test'] for r in rows)} test texts):", "", _table(["method", *[f"k={k}" for k in shots]], fit), ""]
    ece = [[f"`{m}`", *[_fmt(summary(rows, m, k, "ece"), 1, 3) for k in shots]] for m in methods]
    text += ["Top-label expected calibration error (15 bins; lower is better):", "",
             _table(["method", *[f"k={k}" for k in shots]], ece), ""]
    text += ["Goals of the issue, each a paired difference measured in these runs:", "",
             _table(["goal", "measured", ""], goals(rows, shots)), ""]
    chosen = defaultdict(lambda: defaultdict(int))
    for r in rows:
        if r["method"] == "auto":
            chosen[r["shots"]][r["chosen"]] += 1
    if chosen:
        text += ["What `auto` chose (configurations):", "",
                 _table(["k", "choices"], [[k, ", ".join(f"{c} {n}" for c, n in sorted(chosen[k].items(),
                                                                                     key=lambda x: -x[1]))]
                                          for k in sorted(chosen)]), ""]
    per_task = []
    k_show = 8 if 8 in shots else shots[0]
    for t in tasks:
        cells = []
        for m in methods:
            v = [r["accuracy"] for r in rows if r["method"] == m and r["shots"] == k_show and r["task"] == t]
            cells.append(f"{100 * np.mean(v):.1f}" if v else "—")
        per_task.append([t, *cells])
    text += [f"Per task at k={k_show} (accuracy %, mean over seeds):", "",
             _table(["task", *[f"`{m}`" for m in methods]], per_task)]
    return "\n".join(text)


def plot(parts, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(parts)
    shots = sorted({r["shots"] for r in rows})
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for m in [m for m in ORDER if any(r["method"] == m for r in rows)]:
        pts = [(summary(rows, m, k, "fit_seconds"), summary(rows, m, k), k) for k in shots if summary(rows, m, k)]
        ax.plot([p[0][0] for p in pts], [100 * p[1][0] for p in pts], marker="o", label=m)
        for t, a, k in pts:
            ax.annotate(str(k), (t[0], 100 * a[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds per task (from raw texts, log scale); labels: examples per class")
    ax.set_ylabel("accuracy, mean over tasks (%)")
    ax.set_title("Few-shot accuracy against fit time (MiniLM, one CPU core per run)\n"
                 "(a method run on fewer draws: mean over those; counts in the table)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default=",".join(str(HERE.parent / p) for p in PARTS))
    ap.add_argument("--plot", default=str(HERE / "best_head.png"))
    args = ap.parse_args(argv)
    parts = [json.loads(Path(p).read_text()) for p in args.parts.split(",") if Path(p).is_file()]
    print(render(*parts))
    plot(parts, Path(args.plot))


if __name__ == "__main__":
    main()
