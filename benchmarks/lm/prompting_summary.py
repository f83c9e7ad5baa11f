"""Tables, goals and plot of benchmarks/lm/prompting.json (rendered into docs/results/lm.md by docs.py).

    python benchmarks/lm/prompting_summary.py     # writes benchmarks/lm/prompting.png, prints the tables
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VARIANTS = ["sum/raw", "sum/cal", "sum/fitted", "per_token/cal", "per_byte/cal", "unconditional/raw",
            "unconditional/cal"]
PROBES = ["probe_minilm", "probe_smollm2", "icl_smollm2"]
SENTIMENT = ("sst2", "rotten_tomatoes", "imdb", "financial_phrasebank")


def _table(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def collect(r: dict):
    """acc[(pool, method, k)][task][seed] for the K sweep (order None) and the probes."""
    acc = defaultdict(lambda: defaultdict(dict))
    orders = defaultdict(lambda: defaultdict(list))  # orders[variant][task] -> accuracies over orders
    seconds = []
    for row in r["rows"]:
        if row["method"] == "lm_prompt":
            if row["order"] is not None:
                for v, a in row["accuracy"].items():
                    orders[v][row["task"]].append(a)
                continue
            for v, a in row["accuracy"].items():
                acc[(row["pool"], v, row["k"])][row["task"]][row["seed"]] = a
            seconds.append(row["seconds"] / row["n_test"] * 100)
        else:
            acc[(row["pool"], row["method"], None)][row["task"]][row["seed"]] = row["accuracy"]
    return acc, orders, seconds


def task_means(cell: dict, tasks) -> dict:
    return {t: float(np.mean(list(cell[t].values()))) for t in tasks if t in cell and cell[t]}


def mean_spread(cell: dict, tasks) -> tuple[float, float, int]:
    """Mean over tasks of each task's mean over its seeds, ± the std over seeds of the mean over the
    tasks that ran every seed (banking77 runs one seed), and how many seeds that spread covers."""
    tasks = [t for t in tasks if cell.get(t)]
    if not tasks:
        return float("nan"), float("nan"), 0
    mean = float(np.mean([np.mean(list(cell[t].values())) for t in tasks]))
    seeds = sorted({s for t in tasks for s in cell[t]})
    full = [t for t in tasks if all(s in cell[t] for s in seeds)]
    per_seed = [np.mean([cell[t][s] for t in full]) for s in seeds] if full else []
    return mean, float(np.std(per_seed)) if per_seed else float("nan"), len(per_seed)


def render(r: dict) -> str:
    acc, orders, seconds = collect(r)
    ks = [int(k) for k in r["args"]["ks"].split(",")]
    tasks = sorted({row["task"] for row in r["rows"] if row["pool"] == 8})
    fitted_tasks = [t for t in tasks if t in acc.get((8, "sum/fitted", 0), {})]
    out = [f"SmolLM2-135M-Instruct prompted with K demonstrations drawn from 8 labelled examples per class, "
           f"{len(tasks)} tasks, ≤ {r['args']['max_test']} test texts each ({r['args']['max_test_many']} on banking77), "
           f"seeds 0–{r['args']['seeds'] - 1} (banking77: seed 0 only); mean over tasks of each task's mean accuracy, ± the "
           "std over seeds of the mean over the tasks that ran every seed. `raw`: uncalibrated; "
           "`cal`: contextual calibration; `fitted`: the calibration map fitted on the pool texts outside the prompt "
           f"(its mean is over the {len(fitted_tasks)} tasks it ran on, all but banking77, so read it against the "
           "`sum/raw*` row). The probes use all 8 per class (no K).", ""]
    def cell(key, use) -> str:
        m, s, n = mean_spread(acc.get(key, {}), use)
        return f"{m:.3f} ± {s:.3f}" if n else "—"

    rows = [[f"`{v}`", *[cell((8, v, k), fitted_tasks if v == "sum/fitted" else tasks) for k in ks]] for v in VARIANTS]
    rows.append(["`sum/raw*` (same tasks as fitted)", *[cell((8, "sum/raw", k), fitted_tasks) for k in ks]])
    rows += [[f"`{p}` (8/class)", cell((8, p, None), tasks), *[""] * (len(ks) - 1)] for p in PROBES]
    out.append(_table(["scoring / calibration", *[f"K={k}" for k in ks]], rows))

    # per task: the head's defaults and the probes
    out += ["", "Per task (mean over seeds), K = 0 / 4 / 16:", ""]
    rows = []
    for t in tasks:
        def cell(v, k):
            c = acc.get((8, v, k), {}).get(t, {})
            return f"{np.mean(list(c.values())):.2f}" if c else "—"
        rows.append([t, " / ".join(cell("sum/raw", k) for k in (0, 4, 16)), " / ".join(cell("sum/cal", k) for k in (0, 4, 16)),
                     " / ".join(cell("sum/fitted", k) for k in (0, 4, 16)),
                     *[cell(p, None) for p in PROBES]])
    out.append(_table(["task", "sum/raw", "sum/cal", "sum/fitted", *PROBES], rows))

    # goals
    out += ["", "**Goals**", ""]
    gains = []
    for k in [k for k in ks if k >= 4]:
        a = mean_spread(acc.get((8, "sum/cal", k), {}), tasks)[0]
        b = mean_spread(acc.get((8, "sum/raw", k), {}), tasks)[0]
        gains.append(f"K={k}: {100 * (a - b):+.1f}")
    out.append(f"- Calibrated beats uncalibrated by ≥ 3 points mean at K ≥ 4 (sum scoring, contextual): "
               f"{', '.join(gains)} points.")
    for v in ("sum/raw", "sum/cal", "sum/fitted"):
        falls = []
        for t in (fitted_tasks if v == "sum/fitted" else tasks):
            series = [task_means(acc.get((8, v, k), {}), [t]).get(t) for k in ks]
            if None in series:
                continue
            worst = min(series[j] - max(series[:j]) for j in range(1, len(series)))
            if worst < -0.02:
                falls.append(f"{t} ({100 * worst:+.0f})")
        out.append(f"- Accuracy never falls (by more than 2 points) as K grows, `{v}`: "
                   + ("holds on every task." if not falls else f"fails on {len(falls)}: " + ", ".join(falls) + "."))
    lm_methods = [(8, v, k) for v in VARIANTS for k in ks] + [(8, "probe_smollm2", None), (8, "icl_smollm2", None)]
    best = max(((key, mean_spread(acc.get(key, {}), fitted_tasks if key[1] == "sum/fitted" else tasks)[0])
                for key in lm_methods if acc.get(key)), key=lambda x: -1 if np.isnan(x[1]) else x[1])
    same = fitted_tasks if best[0][1] == "sum/fitted" else tasks  # the probe on the same tasks as the best
    base = mean_spread(acc.get((8, "probe_minilm", None), {}), same)[0]
    label = f"{best[0][1]}" + (f" K={best[0][2]}" if best[0][2] is not None else "")
    out.append(f"- Best LM-based head beats the MiniLM probe on the mean at 8/class: best is `{label}` "
               f"{best[1]:.3f} vs probe {base:.3f} ({100 * (best[1] - base):+.1f} points"
               + (f", both on the {len(same)} tasks without banking77" if best[0][1] == "sum/fitted" else "") + ").")
    sent = [t for t in SENTIMENT if acc.get((64, "probe_minilm", None), {}).get(t)]
    if sent:
        rows = []
        wins = 0
        kmax = max(ks)
        for t in sent:
            probe = np.mean(list(acc[(64, "probe_minilm", None)][t].values()))
            cands = {f"{v} K={kmax}": acc.get((64, v, kmax), {}).get(t) for v in VARIANTS}
            cands.update({p: acc.get((64, p, None), {}).get(t) for p in PROBES[1:]})
            cands = {n: np.mean(list(c.values())) for n, c in cands.items() if c}
            name, value = max(cands.items(), key=lambda x: x[1])
            wins += value > probe
            rows.append([t, f"{probe:.3f}", f"`{name}` {value:.3f}", f"{100 * (value - probe):+.1f}"])
        out.append(f"- Best LM-based head beats the MiniLM probe at 64/class on every sentiment task: "
                   f"{wins} of {len(sent)} (best per task, over every variant and the probes on SmolLM2 states):")
        out += ["", _table(["task", "probe_minilm 64/class", "best LM-based", "gap"], rows)]

    # orders and flips
    if orders:
        out += ["", f"Spread over {r['args']['orders']} orders of the same K={r['args']['order_k']} demonstrations "
                "(seed 0; std of accuracy over orders, mean over tasks):", ""]
        rows = [[f"`{v}`", f"{np.mean([np.std(a) for a in orders[v].values()]):.3f}",
                 f"{np.mean([np.mean(a) for a in orders[v].values()]):.3f}"] for v in VARIANTS if v in orders]
        out.append(_table(["variant", "std over orders", "mean accuracy"], rows))
    flips = [row for row in r["rows"] if row["method"] == "lm_prompt" and row["order"] is None]
    if flips:
        n_raw = sum(row["any_flip"]["raw"] for row in flips)
        out += ["", f"Normalisation choice changes at least one answer in {n_raw} of {len(flips)} (task, pool, K, seed) "
                "runs (uncalibrated); sum and per-token coincide where every verbalizer is one token (all tasks but "
                "banking77 and a few multi-token label words)."]
    if seconds:
        out += ["", f"Cost: {np.median(seconds):.1f} s per 100 scored test texts (median over runs; "
                f"{r['torch_threads']} torch threads, 2-core CPU; includes fitting the calibration map)."]
    return "\n".join(out)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc, _, _ = collect(r)
    ks = [int(k) for k in r["args"]["ks"].split(",")]
    tasks = sorted({row["task"] for row in r["rows"] if row["pool"] == 8})
    fitted_tasks = [t for t in tasks if t in acc.get((8, "sum/fitted", 0), {})]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for v, style in (("sum/raw", "o-"), ("sum/cal", "s-"), ("sum/fitted", "^-"), ("unconditional/cal", "d--")):
        use = fitted_tasks if v == "sum/fitted" else tasks
        ms = [mean_spread(acc.get((8, v, k), {}), use) for k in ks]
        note = " (no banking77)" if v == "sum/fitted" else ""
        ax.errorbar(ks, [m[0] for m in ms], yerr=[m[1] for m in ms], fmt=style, capsize=3, label=f"lm_prompt {v}{note}")
    for p, c in (("probe_minilm", "k"), ("probe_smollm2", "gray")):
        m = mean_spread(acc.get((8, p, None), {}), tasks)[0]
        ax.axhline(m, color=c, ls=":", label=f"{p} (8/class, all {len(tasks)} tasks)")
    ax.set_xlabel("K demonstrations in the prompt")
    ax.set_ylabel("mean accuracy over tasks")
    ax.set_xticks(ks)
    ax.legend(fontsize=7)
    ax.set_title("SmolLM2-135M few-shot prompting")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    r = json.loads((HERE / "prompting.json").read_text())
    plot(r, HERE / "prompting.png")
    print(render(r))


if __name__ == "__main__":
    sys.exit(main())
