"""Markdown tables and figures of the agents result files, for benchmarks/docs.py (the one writer of results
pages) and the benchmarks' --plot-only."""

from __future__ import annotations

from pathlib import Path

NAMES = {"rlot": "**RLoT navigator**", "random": "random blocks", "direct": "direct answer (no block)",
         "always-reason": "always reason (CoT to depth 5)", "cot": "CoT-like: reason x2, answer",
         "rule": "hand rule over the rubric"}


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None (with a note) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: figure skipped (pip install 'anytask[plot]')")
        return None
    return plt


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _acc(c: dict) -> str:
    return f"{c['accuracy']:.3f} ± {c['accuracy_sd']:.3f}" if c.get("n", 1) > 1 and "accuracy_sd" in c \
        else f"{c['accuracy']:.3f}"


def rlot(r: dict) -> str:
    s = r["summary"]
    settings = list(s["sim"])
    rows = []
    for name in NAMES:
        best = [max(s["sim"][st], key=lambda k: s["sim"][st][k]["accuracy"]) for st in settings]
        rows.append([NAMES[name]] + [_acc(s["sim"][st][name]) + (" (best)" if b == name else "")
                                     for st, b in zip(settings, best)]
                    + [f"{s['sim']['base'][name]['steps']:.2f}"])
    parts = [f"Simulated reasoner, accuracy over {r['episodes']} held-out episodes per setting (mean ± sd over "
             f"{r['seeds']} seeds; navigators trained on `base`):", "",
             _table(["policy"] + [f"`{st}`" for st in settings] + ["blocks / problem (base)"], rows), "",
             "Transfer (navigator trained on one setting, evaluated on each):", "",
             _table(["trained -> evaluated", "accuracy"], [[k, _acc(v)] for k, v in s["transfer"].items()])]
    for cond, cell in s["lm"].items():
        order = ["rlot"] + [k for k in NAMES if k != "rlot" and k in cell]
        best = max(order, key=lambda k: cell[k]["accuracy"])
        rows = [[NAMES[k] + (" (best)" if k == best else ""), _acc(cell[k]), f"{cell[k]['steps']:.2f}",
                 f"{cell[k]['calls']:.1f}", f"{cell[k]['est_seconds']:.1f}"] for k in order]
        parts += ["", f"SmolLM2-135M-Instruct running the blocks, condition `{cond}`, {r['problems']} word problems "
                  "(navigators: the simulator-trained ones, no training on the LM):", "",
                  _table(["policy", "accuracy", "blocks / problem", "LM calls / problem", "est. s / problem"], rows)]
    return "\n".join(parts)


def plot_rlot(r: dict, path: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    s = r["summary"]
    panels = 1 + len(s["lm"]) + 1
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
    names = list(NAMES)
    for j in r["sim_jobs"]:
        if j["train"] == "base":
            axes[0].plot([50 * i + 100 for i in range(len(j["curve"]))], j["curve"], lw=1, alpha=0.7)
    axes[0].set(title="RLoT training (sim base): accuracy", xlabel="episode (100-episode mean)", ylabel="accuracy")
    ax = axes[1]
    width = 0.8 / len(s["sim"])
    for k, st in enumerate(s["sim"]):
        ax.bar([i + k * width for i in range(len(names))], [s["sim"][st][n]["accuracy"] for n in names], width,
               yerr=[s["sim"][st][n]["accuracy_sd"] for n in names], label=st)
    ax.set_xticks([i + width for i in range(len(names))], names, rotation=35, ha="right", fontsize=8)
    ax.set(title="simulated reasoner", ylabel="accuracy")
    ax.legend(fontsize=7)
    for ax, (cond, cell) in zip(axes[2:], s["lm"].items()):
        xs = [n for n in names if n in cell]
        ax.bar(range(len(xs)), [cell[n]["accuracy"] for n in xs])
        ax.set_xticks(range(len(xs)), xs, rotation=35, ha="right", fontsize=8)
        ax.set(title=f"SmolLM2: {cond}", ylabel="accuracy", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MAPLE_COLS = (("success", "task success"), ("recovery_success", "recovery success"),
              ("action_accuracy", "action accuracy"), ("steps", "steps / task"))


def _pm(c: dict, key: str, digits: int = 3) -> str:
    if key not in c:
        return ""
    return f"{c[key]:.{digits}f} ± {c[key + '_sd']:.{digits}f}" if c["n"] > 1 else f"{c[key]:.{digits}f}"


def maple(r: dict) -> str:
    s, cal = r["summary"], r["calibration"]
    parts = [f"MiniLM merge threshold {cal['threshold']:.2f}, chosen on {cal['observations']} random-walk "
             f"observations with their own seeds (balanced accuracy {cal['balanced_accuracy']:.3f}: "
             f"{cal['same_merged']:.1%} of same-screen pairs merged, {cal['other_merged']:.1%} of other-screen "
             "pairs).", ""]
    for faults in r["faults"]:
        best = max(r["variants"], key=lambda v: s[f"{faults}|{v}"].get("success", 0))
        rows = [[v + (" (best)" if v == best else "")] + [_pm(s[f"{faults}|{v}"], k, 1 if k == "steps" else 3)
                                                          for k, _ in MAPLE_COLS] + [_pm(s[f"{faults}|{v}"],
                                                                                         "states", 1)]
                for v in r["variants"]]
        parts += [f"Faults at {faults} per step each (pop-up, dead click, wrong navigation); 14 held-out tasks "
                  f"after 14 training tasks, mean ± sd over {r['seeds']} seeds:", "",
                  _table(["variant"] + [c for _, c in MAPLE_COLS] + ["FSM states"], rows), ""]
    rows = []
    for faults in r["faults"]:
        for v in r["variants"]:
            c = s[f"{faults}|{v}"]
            if "run1_steps" in c:
                rows.append([faults, v, _pm(c, "run1_success"), _pm(c, "run1_steps", 1), _pm(c, "run2_success"),
                             _pm(c, "run2_steps", 1)])
    parts += ["Second run of the same task (a fresh agent runs each held-out task twice):", "",
              _table(["faults", "variant", "success, run 1", "steps, run 1", "success, run 2", "steps, run 2"],
                     rows)]
    if r.get("lm_actor"):
        rows = [[v, f"{c['run1_success']:.2f}", f"{c['run1_steps']:.1f}", f"{c['run2_success']:.2f}",
                 f"{c['run2_steps']:.1f}", f"{c['lm_calls_per_task']:.0f}", f"{c['lm_seconds_per_task']:.0f}"]
                for v, c in r["lm_actor"].items()]
        n = next(iter(r["lm_actor"].values()))["tasks"]
        parts += ["", f"SmolLM2-135M-Instruct as the actor (rating the elements), second-run protocol on {n} "
                  "held-out tasks, faults 5 %, seed 0:", "",
                  _table(["variant", "success, run 1", "steps, run 1", "success, run 2", "steps, run 2",
                          "LM calls / task (both runs)", "LM seconds / task"], rows)]
    return "\n".join(parts)


def plot_maple(r: dict, path: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    s = r["summary"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    width = 0.8 / len(r["faults"])
    for ax, (key, label) in zip(axes, MAPLE_COLS[:3]):
        for k, faults in enumerate(r["faults"]):
            cells = [s[f"{faults}|{v}"] for v in r["variants"]]
            ax.bar([i + k * width for i in range(len(cells))], [c.get(key, 0) for c in cells], width,
                   yerr=[c.get(key + "_sd", 0) for c in cells], label=f"faults {faults}")
        ax.set_xticks([i + width / 2 for i in range(len(r["variants"]))], r["variants"], rotation=30, ha="right",
                      fontsize=8)
        ax.set(title=label, ylim=(0, 1.05))
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lma3(r: dict) -> str:
    s = r["summary"]
    best = max(r["variants"], key=lambda v: s[v]["coverage"])
    rows = [[v + (" (best)" if v == best else ""), _pm(s[v], "mastered", 0), _pm(s[v], "atomic", 0),
             _pm(s[v], "composite", 0), _pm(s[v], "coverage"), f"{s[v]['fit_s']:.0f}"] for v in r["variants"]]
    parts = [f"Rule-based components, {r['episodes']} episodes, mean ± sd over {r['seeds']} seeds:", "",
             _table(["loop", "goals mastered", "atomic", "composite", "held-out coverage", "s / run"], rows)]
    if r.get("lm"):
        rows = []
        for j in r["lm"]:
            rule = j["rule_same_episodes"]
            rows.append([f"SmolLM2 as the {j['part']} function" if j["part"] == "reward" else
                         f"SmolLM2 as the {j['part']}er", j["episodes"], j["mastered"], rule["mastered"],
                         f"{j['precision']:.3f}" if j["precision"] is not None else "",
                         f"{j['coverage']:.3f}", f"{rule['coverage']:.3f}", j["lm_calls"],
                         f"{j['lm_seconds'] / j['episodes']:.1f}",
                         sum(j["parse_failures"].values())])
        parts += ["", "SmolLM2-135M-Instruct in the loop (seed 0; the other parts rule-based), beside the rule loop "
                  "over the same episodes:", "",
                  _table(["loop", "episodes", "goals mastered", "rule loop: mastered", "precision (replay check)",
                          "coverage", "rule loop: coverage", "LM calls", "LM s / episode", "unparsable answers"],
                         rows)]
    return "\n".join(parts)


def plot_lma3(r: dict, path: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = dict(zip(r["variants"], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for j in r["jobs"]:
        step = max(1, r["episodes"] // 50)
        axes[0].plot([i * step for i in range(len(j["curve"]))], j["curve"], color=colours[j["variant"]], lw=1,
                     label=j["variant"] if j["seed"] == 0 else None)
    axes[0].set(title="repertoire growth", xlabel="episode", ylabel="goals mastered", yscale="log")
    axes[0].legend(fontsize=8)
    s = r["summary"]
    axes[1].bar(range(len(r["variants"])), [s[v]["coverage"] for v in r["variants"]],
                yerr=[s[v]["coverage_sd"] for v in r["variants"]], color=[colours[v] for v in r["variants"]])
    axes[1].set_xticks(range(len(r["variants"])), r["variants"], rotation=20, ha="right", fontsize=8)
    axes[1].set(title="held-out goal coverage", ylim=(0, 1.05))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
