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


def _stage_keys(r: dict) -> list[str]:
    keys = [k for k in r["summary"] if isinstance(r["summary"][k], dict)]
    order = ["demos", "imitation"] + sorted(k for k in keys if k.startswith("offline")) + ["online", "one-step"]
    return [k for k in order if k in keys]


def rl100(r: dict) -> str:
    s = r["summary"]
    rows = []
    for k in _stage_keys(r):
        c = s[k]
        gate = ""
        if k.startswith("offline"):
            gate = f"{c['accepted']}/{c['n']} accepted; corrupted: {c['corrupted_rejected']}/{c['n']} rejected " \
                   f"(its success {_pm(c, 'corrupted_success')})"
        name = (f"stage 2: offline candidate {int(k.split()[1]) + 1}" if k.startswith("offline") else
                {"demos": "scripted demonstrations (mixed noise)", "imitation": "stage 1: diffusion imitation",
                 "online": "stage 3: after online RL", "one-step": "one-step distilled policy"}[k])
        rows.append([name, c["n"], _pm(c, "success"), _pm(c, "return"), _pm(c, "ope") if "ope" in c else "", gate])
    rows.append(["baseline: MSE behaviour cloning (same demos)", r["seeds"], _pm({**s, "n": r["seeds"]},
                                                                                  "mse_bc_success"), "", "", ""])
    rho = s.get("ope_vs_return_spearman")
    return (f"Push world (disc pusher, state observations), {r['episodes']} held-out episodes per seed, mean ± sd over "
            f"{r['seeds']} seeds. *OPE*: the FQE estimate of the discounted return from the start states (the gate "
            f"accepts a candidate when it beats the current policy's estimate fitted with the same seed); *return*: "
            f"the measured discounted return. Gate: {s['gate_accepted']} of {s['gate_proposed']} candidates "
            f"accepted; corrupted updates (advantages negated) rejected {s['corrupted_rejected']} of "
            f"{s['gate_proposed']}; Spearman(OPE, measured return) over the candidates "
            f"{'n/a' if rho is None else f'{rho:+.2f}'}. Latency at batch 1: multi-step chain "
            f"{s['multi_step_ms']:.2f} ms, one-step student {s['one_step_ms']:.3f} ms "
            f"({s['multi_step_ms'] / s['one_step_ms']:.0f}x). Fit {s['fit_s'] / 60:.1f} min per seed.\n\n"
            + _table(["policy", "seeds", "success", "return", "OPE", "gate"], rows))


def plot_rl100(r: dict, path: Path) -> None:
    """Success after each stage (mean ± sd over seeds), with the MSE-BC baseline as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = _stage_keys(r)
    s = r["summary"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    x = np.arange(len(keys))
    ax.errorbar(x, [s[k]["success"] for k in keys], yerr=[s[k]["success_sd"] for k in keys], marker="o", capsize=2,
                label="RL-100 stages")
    off = [i for i, k in enumerate(keys) if k.startswith("offline")]
    if off:
        ax.errorbar(off, [s[keys[i]]["corrupted_success"] for i in off],
                    yerr=[s[keys[i]]["corrupted_success_sd"] for i in off], marker="x", ls=":", capsize=2,
                    label="corrupted candidates")
    ax.axhline(s["mse_bc_success"], color="grey", ls="--", label="MSE behaviour cloning")
    ax.set_xticks(x)
    ax.set_xticklabels([k.replace("offline ", "off ") for k in keys], rotation=30, fontsize=8)
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


AG2_REWARD = {"masked": "masked-video encoder", "pixels": "unmasked-video encoder", "oracle": "true distance (oracle)"}


def ag2manip(r: dict) -> str:
    s = r["summary"]
    inv = []
    for view in ("masked", "pixels"):
        c = {**s["invariance"][view], "n": r["seeds"]}
        inv.append([f"{view} frames", _pm(c, "corr_L_arm"), _pm(c, "corr_L_disc"), _pm(c, "spearman_true_L"),
                    _pm(c, "spearman_true_arm"), f"{c['encoder_s']:.0f}"])
    rows = []
    for key, c in s["policies"].items():
        reward, action = key.split("|")
        rows.append([AG2_REWARD[reward], "proxy (interaction-level, retargeted)" if action == "proxy"
                     else "native joint actions", c["n"], _pm(c, "success"), _pm(c, "final_distance"),
                     f"{c['fit_s']:.0f}"])
    return (f"Push world, {r['seeds']} seeds (mean ± sd). **Reward invariance** on 30 held-out episodes drawn with "
            f"the L pusher (the videos' body), the disc and the arm: Pearson correlation of the goal-distance reward "
            f"between drawings, and its Spearman correlation with the true negative object-goal distance.\n\n"
            + _table(["encoder trained on", "corr(L, arm)", "corr(L, disc)", "Spearman vs true (L)",
                      "Spearman vs true (arm)", "train s"], inv)
            + f"\n\n**The arm learning to push** (CEM, same budget for every row; success on {r['episodes']} held-out "
            "episodes of the arm):\n\n"
            + _table(["reward", "action space", "seeds", "success", "final distance", "fit s"], rows))
