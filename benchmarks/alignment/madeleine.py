"""MADELEINE on synthetic multi-stain slides (card 13): few-shot linear probes on frozen slide embeddings from mean
pooling, single-view SimCLR-style pretraining, cross-view global-only and global + local (graph OT) pretraining:

    python benchmarks/alignment/madeleine.py --out benchmarks/alignment/madeleine.json

Slides (anytask.data.signals.synthetic_slides): 3 stains, 50-200 patches per stain, 20 % of the patches carry
the slide's 8-d latent (which decides its class, 4 classes), the rest carry a per-stain nuisance. Per seed: 1,000
unlabelled slides to pretrain on, 1,000 labelled slides to draw the shots from, 1,000 test slides (all new draws
of the same stains). Probes: the project's linear_probe head on k = 1, 10, 25 slides per class (10 random draws of
the shots per seed), accuracy on the test slides. Encoder settings are the module's defaults except 15 epochs and
8 OT pairs per batch (CPU time), fixed before the run; local_weight 0.5.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

METHODS = {"mean_pool": None, "single_view": dict(objective="single_view"), "global": dict(local_weight=0.0),
           "global+local": dict(local_weight=0.5)}


def plot(result: dict, path: Path) -> None:
    """Few-shot probe accuracy against shots per class, one line per slide encoder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["summary"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in result["methods"]:
        ax.errorbar(result["shots"], [s[f"{m}|{k}"]["accuracy"] for k in result["shots"]],
                    yerr=[s[f"{m}|{k}"]["sd"] for k in result["shots"]], marker="o", capsize=2, label=m)
    ax.axhline(0.25, color="grey", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_xticks(result["shots"], [str(k) for k in result["shots"]])
    ax.set_xlabel("labelled slides per class")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--slides", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--shots", default="1,10,25")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "madeleine.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    if args.plot_only:
        return plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    import torch

    from anytask.data.signals import synthetic_slides
    from anytask.methods.alignment import BagEncoder, MeanPool
    from anytask.methods.heads import create_head

    start = time.perf_counter()
    shots = [int(k) for k in args.shots.split(",")]
    rows = []
    for seed in range(args.seeds):
        pre, _ = synthetic_slides(args.slides, seed=3 * seed)
        pool, y = synthetic_slides(args.slides, seed=3 * seed + 1)
        test, yt = synthetic_slides(args.slides, seed=3 * seed + 2)
        for name, params in METHODS.items():
            t = time.perf_counter()
            enc = MeanPool().fit(pre) if params is None else \
                BagEncoder(epochs=args.epochs, local_pairs=8, seed=seed, **params).fit(pre)
            fit_s = time.perf_counter() - t
            P, T = enc.transform(pool), enc.transform(test)
            rng = np.random.default_rng(seed)
            for k in shots:
                accs = []
                for _ in range(args.draws):
                    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in range(4)])
                    accs.append(float(np.mean(create_head("linear_probe").fit(P[idx], y[idx]).predict(T) == yt)))
                rows.append({"method": name, "seed": seed, "k": k, "accuracy": float(np.mean(accs)),
                             "draws": accs, "fit_seconds": round(fit_s, 1),
                             "final_loss": getattr(enc, "loss_curve_", [None])[-1]})
            print(f"seed {seed} {name:>12} ({fit_s:.0f} s): " + ", ".join(
                f"k={r['k']} {r['accuracy']:.3f}" for r in rows[-len(shots):]), flush=True)
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['method']}|{r['k']}", []).append(r)
    summary = {key: {"accuracy": float(np.mean([r["accuracy"] for r in v])),
                     "sd": float(np.std([r["accuracy"] for r in v], ddof=1)) if len(v) > 1 else 0.0,
                     "seeds": len(v), "fit_seconds": float(np.mean([r["fit_seconds"] for r in v]))}
               for key, v in summary.items()}
    result = {"benchmark": "madeleine-synthetic", "command": " ".join(["python"] + sys.argv), "shots": shots,
              "methods": list(METHODS), "slides": {"n": args.slides, "stains": 3, "latent": 8, "dim": 64,
                                                   "classes": 4, "signal": 0.2, "patches": [50, 200]},
              "settings": {**BagEncoder(epochs=args.epochs, local_pairs=8).get_params(), "chance": 0.25},
              "rows": rows, "summary": summary, "wall_seconds": round(time.perf_counter() - start, 1),
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "threads": torch.get_num_threads()},
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot(result, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out} in {result['wall_seconds']} s")


if __name__ == "__main__":
    main()
