"""The Consciousness Prior's implication (card 39): a top-k attention bottleneck vs soft attention vs a dense
MLP on sparse factor graphs, by training size and under a shift of the variables the target does not need;
a dense-dependency graph as the control where the bottleneck should not help.

    python benchmarks/mechanisms/bottleneck.py --out benchmarks/mechanisms/bottleneck.json

Per seed a fresh random graph (20 variables, 3 values; the target has 2 parents, 8 in the control), 4,000
test rows from it and 4,000 from its shifted copy; the Bayes-optimal accuracy (exact posterior) is the
ceiling. Hyperparameters are the classes' defaults except epochs=30 (fixed before running; nothing is
tuned on the test rows).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    panels = [("sparse", "accuracy", "sparse graph"), ("sparse", "shift_accuracy", "sparse graph, shifted"),
              ("dense", "accuracy", "dense control")]
    for ax, (graph, key, title) in zip(axes, panels):
        rows = [r for r in result["rows"] if r["graph"] == graph]
        sizes = sorted({r["n"] for r in rows})
        for model in result["models"]:
            m = [np.mean([r[key] for r in rows if r["model"] == model and r["n"] == n]) for n in sizes]
            s = [np.std([r[key] for r in rows if r["model"] == model and r["n"] == n]) for n in sizes]
            ax.errorbar(sizes, m, yerr=s, marker="o", capsize=3, label=model)
        bayes = np.mean([r["bayes_shift" if key == "shift_accuracy" else "bayes"] for r in rows])
        ax.axhline(bayes, color="k", ls="--", lw=1, label="Bayes-optimal")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("training rows")
    axes[0].set_ylabel("accuracy (mean ± sd over seeds)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="100,300,1000,3000")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "mechanisms" / "bottleneck.json"))
    args = p.parse_args(argv)

    import torch

    from anytask.methods.mechanisms.bottleneck import AttentionBottleneck, DenseMLP, factor_graph, split_target

    torch.set_num_threads(1)
    models = {"top-3 bottleneck": lambda s: AttentionBottleneck(k=3, n_values=3, epochs=args.epochs, seed=s),
              "soft attention": lambda s: AttentionBottleneck(k=None, n_values=3, epochs=args.epochs, seed=s),
              "dense MLP": lambda s: DenseMLP(n_values=3, epochs=args.epochs, seed=s)}
    rows = []
    for graph_kind in ("sparse", "dense"):
        for seed in [int(s) for s in args.seeds.split(",")]:
            g, shifted = factor_graph(seed=seed, dense=graph_kind == "dense")
            rng = np.random.default_rng(1000 + seed)
            test, shift = g.sample(4000, rng), shifted.sample(4000, rng)
            Xt, yt = split_target(g, test)
            Xs, ys = split_target(g, shift)
            bayes = float(np.mean(g.posterior(test).argmax(1) == yt))
            bayes_shift = float(np.mean(shifted.posterior(shift).argmax(1) == ys))
            blanket = g.blanket()
            to_var = [v for v in range(len(g.parents)) if v != g.target]  # input column -> variable
            for n in [int(x) for x in args.sizes.split(",")]:
                X, y = split_target(g, g.sample(n, np.random.default_rng(seed * 100_000 + n)))
                for name, make in models.items():
                    model = make(seed).fit(X, y)
                    row = {"graph": graph_kind, "seed": seed, "n": n, "model": name,
                           "accuracy": float(np.mean(model.predict(Xt) == yt)),
                           "shift_accuracy": float(np.mean(model.predict(Xs) == ys)),
                           "bayes": bayes, "bayes_shift": bayes_shift, "blanket": sorted(blanket)}
                    if name == "top-3 bottleneck":
                        chosen = {to_var[j] for j, f in enumerate(model.selected(Xt)) if f >= 0.5}
                        row["chosen"] = sorted(chosen)
                        row["blanket_recall"] = len(chosen & blanket) / len(blanket)
                        row["blanket_precision"] = len(chosen & blanket) / len(chosen) if chosen else 0.0
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    result = {"command": "python " + " ".join(["benchmarks/mechanisms/bottleneck.py", *sys.argv[1:]]),
              "models": list(models), "rows": rows, "args": vars(args),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
