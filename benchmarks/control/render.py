"""Markdown tables and figures of the control result files, for benchmarks/docs.py (the one writer of results
pages) and the benchmarks' --plot-only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = {"pvn+linear": "**PVN** features + linear Q", "reconstruction+linear": "autoencoder features + linear Q",
         "random+linear": "random features + linear Q", "dqn": "DQN from scratch (same torso, end to end)"}


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _ms(c: dict, key: str) -> str:
    return f"{c[key]:.2f} ± {c[key + '_sd']:.2f}" if c["n"] > 1 else f"{c[key]:.2f}"


def pvn(r: dict) -> str:
    s = r["summary"]
    rows = []
    for game in r["games"]:
        rnd = [j["random_policy_return"] for j in r["jobs"] if j["game"] == game]
        best = max((s[f"{game}|{m}"]["eval"], m) for m in NAMES if f"{game}|{m}" in s)[1]
        for m in NAMES:
            c = s.get(f"{game}|{m}")
            if c is None:
                continue
            name = NAMES[m] + (" (best)" if m == best else "")
            rows.append([game, name, c["n"], _ms(c, "eval"), _ms(c, "last10"), f"{c['steps_per_s']:.0f}",
                         f"{c['train_s']:.0f}"])
        rows.append([game, "uniform random policy", len(rnd), f"{sum(rnd) / len(rnd):.2f}", "", "", ""])
    enc = {}
    for j in r["jobs"]:
        for name, e in j["encoders"].items():
            enc.setdefault(name, []).append(e["train_s"])
    fire = [j["encoders"]["pvn"]["fire_rate"] for j in r["jobs"] if "pvn" in j["encoders"]]
    cost = "; ".join(f"{k} {sum(v) / len(v):.0f} s" for k, v in enc.items())
    return (f"MinAtar v1 games (minimal action sets, sticky actions 0.1), {r['budget']:,} environment steps with the "
            f"reward for every learner, mean ± sd over {r['seeds']} seeds (each seed: its own random-policy data, "
            f"encoders and learner). *eval*: 20 greedy episodes after training; *last 10 %*: the training episodes "
            f"that ended in the last 10 % of the budget. Encoder training per seed (2-core machine, one thread): "
            f"{cost}; PVN indicators fired on {100 * sum(fire) / len(fire):.2f} % of states (target 1 %). "
            f"Total wall time {r['wall_s'] / 60:.0f} min.\n\n"
            + _table(["game", "learner", "seeds", "eval return", "last 10 % return", "env steps/s", "learner s"],
                     rows))


def _sweep_cells(r: dict) -> list[tuple[str, int, int, dict]]:
    """(learner, tasks, width, cell) of a sweep's summary, PVN by width then tasks, then random features."""
    cells = []
    for key, c in r["summary"].items():
        _, tasks, width, learner = key.split("|")
        cells.append((learner, int(tasks), int(width), c))
    return sorted(cells, key=lambda x: (x[0] != "pvn+linear", x[2], x[1]))


def pvn_sweep(r: dict) -> str:
    game = r["games"][0]
    rows = [["PVN" if learner == "pvn+linear" else "random features", tasks or "", width, c["n"], _ms(c, "eval"),
             _ms(c, "last10")] for learner, tasks, width, c in _sweep_cells(r)]
    return (f"{game}, a linear Q-function on frozen features, {r['budget']:,} steps with the reward; PVN with T "
            f"auxiliary tasks (random-network indicators) and feature width varied, everything else as above, beside "
            f"random features of each width (the control that separates width from what PVN learned); mean ± sd "
            f"over {r['seeds']} seeds. The T = 32, width 256 cells are the main run's.\n\n"
            + _table(["features", "tasks T", "width", "seeds", "eval return", "last 10 % return"], rows))


def plot(r: dict, path: Path) -> None:
    """Learning curves (mean over seeds of the binned training returns), one panel per game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    games = r["games"]
    if r["benchmark"] == "pvn-sweep":
        cells = _sweep_cells(r)
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.4), sharey=True)
        pts = [(t, c) for learner, t, w, c in cells if learner == "pvn+linear" and w == 256]
        left.errorbar([p[0] for p in pts], [p[1]["eval"] for p in pts], yerr=[p[1]["eval_sd"] for p in pts],
                      marker="o", capsize=2, label="PVN, width 256")
        rnd = [c for learner, t, w, c in cells if learner == "random+linear" and w == 256]
        if rnd:
            left.axhline(rnd[0]["eval"], color="grey", linestyle="--", label="random features, width 256")
        left.set_xscale("log")
        left.set_xlabel("auxiliary tasks T")
        left.set_ylabel(f"{games[0]} eval return")
        left.legend(fontsize=8)
        for learner, label, t_sel in (("pvn+linear", "PVN, T = 32", 32), ("random+linear", "random features", 0)):
            pts = [(w, c) for lr, t, w, c in cells if lr == learner and t == t_sel]
            right.errorbar([p[0] for p in pts], [p[1]["eval"] for p in pts], yerr=[p[1]["eval_sd"] for p in pts],
                           marker="o", capsize=2, label=label)
        right.set_xscale("log")
        right.set_xlabel("feature width")
        right.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return
    fig, axes = plt.subplots(1, len(games), figsize=(4.2 * len(games), 3.4), squeeze=False)
    for ax, game in zip(axes[0], games):
        for m in NAMES:
            curves = [j["learners"][m]["curve"] for j in r["jobs"] if j["game"] == game and m in j["learners"]]
            if not curves:
                continue
            arr = np.array([[np.nan if v is None else v for v in c] for c in curves], dtype=float)
            x = (np.arange(arr.shape[1]) + 1) * r["budget"] / arr.shape[1]
            ax.plot(x, np.nanmean(arr, 0), label=NAMES[m].replace("**", ""))
        ax.set_title(game)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("training episode return")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


CODEBOOK = {"embclip": "EmbCLIP (no bottleneck)", "codebook": "**codebook** (K = 256, learned)",
            "random codes": "codebook with frozen random codes"}


def codebook(r: dict) -> str:
    s = r["summary"]
    rows = []
    for v in r["variants"]:
        c = s[v]
        curve = " → ".join(f"{np.mean([h['success'] for h in hs]):.2f}" for hs in
                           zip(*[j["history"] for j in r["jobs"] if j["variant"] == v]))
        rows.append([CODEBOOK.get(v, v), c["n"], _pm(c, "success"), _pm(c, "spl"), _pm(c, "sel"),
                     _pm(c, "palette_success"), curve, f"{c['perplexity']:.0f}" if "perplexity" in c else "",
                     f"{c['fit_s']:.0f}"])
    probe_rows = []
    for v in r["variants"]:
        c = s[v]
        for where, label in (("before_codebook", "E (before the codebook)"), ("gru_input", "GRU input")):
            if f"{where}|object_presence" not in c:
                continue
            name = f"{CODEBOOK.get(v, v)}: {label if v != 'embclip' else 'E = GRU input'}"
            probe_rows.append([name] + [_pm(c, f"{where}|{p}") for p in ("object_presence", "goal_visible",
                                                                          "goal_distance_r2")])
    return (f"`anytask/ObjectNav-v0`, {r['episodes']} held-out episodes per seed, mean ± sd over {r['seeds']} seeds. "
            "SPL: success × shortest path / max(shortest, path moved); SEL: success × shortest episode length / "
            "max(shortest, actions taken). *Palette 3*: the same policy on rotated object colours, no tuning. "
            "*Success by round*: the policy's own episodes after BC and each DAgger round (convergence). "
            "Perplexity: exp(entropy) of the mean code usage (256 = all codes used evenly).\n\n"
            + _table(["policy", "seeds", "success", "SPL", "SEL", "success, palette 3", "success by round",
                      "code perplexity", "fit s"], rows)
            + "\n\nLinear probes on the features along the evaluation episodes (balanced accuracy for object presence "
            "and goal visibility, R² for the distance to the goal; fitted on half the episodes, scored on the other "
            "half). The paper: codebook features lose general object presence and keep or gain what the goal "
            "needs.\n\n"
            + _table(["features", "object presence (bal. acc.)", "goal visible (bal. acc.)", "goal distance (R²)"],
                     probe_rows))


def _pm(c: dict, key: str) -> str:
    return f"{c[key]:.3f} ± {c[key + '_sd']:.3f}" if c.get("n", 1) > 1 else f"{c[key]:.3f}"


def plot_codebook(r: dict, path: Path) -> None:
    """Success of the policy's own episodes after each training round, one line per variant (mean ± sd)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for v in r["variants"]:
        hs = [j["history"] for j in r["jobs"] if j["variant"] == v]
        arr = np.array([[h["success"] for h in run] for run in hs])
        x = [h["round"] for h in hs[0]]
        ax.errorbar(x, arr.mean(0), yerr=arr.std(0), marker="o", capsize=2, label=CODEBOOK.get(v, v).replace("**", ""))
    ax.set_xticks(x)
    ax.set_xlabel("training round (1 = after behaviour cloning)")
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
