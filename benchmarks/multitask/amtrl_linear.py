"""Lasso A-MTRL's synthetic linear setting (card 25 a): target excess risk against total source samples for
uniform, nu2 and nu1-LASSO allocation, and the known-relevance oracles, 10 seeds:

    python benchmarks/multitask/amtrl_linear.py --out benchmarks/multitask/amtrl_linear.json

d = 50, k = 5, M = 100 sources, a planted 5-sparse nu (``LinearSetting``), unit noise, 20 target samples. Epoch 1
draws 2,000 samples uniformly (20 per source: the card's pitfall, heads must be estimable before nu is), then
+1,000, +1,000, +2,000, +4,000 by each rule; the representation is refitted by alternating least squares on
everything drawn. LASSO's alpha = 0.5 sqrt(log M / total) (shrinks with the budget; fixed before the run, not
tuned). The paper's ranking to reproduce: nu1 < nu2 < uniform when the true relevance is sparse.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RULES = [("uniform", False), ("nu2", False), ("nu1", False), ("nu2", True), ("nu1", True)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="2000,1000,1000,2000,4000")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "amtrl_linear.json"))
    args = ap.parse_args()
    from anytask.methods.multitask.amtrl import LinearSetting, run_linear

    warnings.simplefilter("ignore")  # LASSO's convergence notes at tiny alpha
    budgets = [int(b) for b in args.budgets.split(",")]
    start = time.perf_counter()
    rows = []
    for seed in range(args.seeds):
        setting = LinearSetting(seed=seed)
        for rule, oracle in RULES:
            for r in run_linear(setting, rule, budgets, n_target=20, seed=seed, oracle=oracle):
                rows.append({**r, "seed": seed, "label": f"{rule}{' (known)' if oracle else ''}"})
        last = [r for r in rows[-len(RULES) * len(budgets):] if r["epoch"] == len(budgets) - 1]
        print(f"seed {seed}: " + ", ".join(f"{r['label']} {r['excess_risk']:.3f}" for r in last), flush=True)
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['label']}|{r['total']}", []).append(r)
    summary = {k: {"mean": float(np.mean([r["excess_risk"] for r in v])),
                   "sd": float(np.std([r["excess_risk"] for r in v], ddof=1)),
                   "support_f1": float(np.mean([r["support_f1"] for r in v])),
                   "sources_used": float(np.mean([r["sources_used"] for r in v]))} for k, v in summary.items()}
    result = {"benchmark": "amtrl-linear", "command": " ".join(["python"] + sys.argv), "budgets": budgets,
              "totals": sorted({r["total"] for r in rows}),
              "labels": [f"{a}{' (known)' if o else ''}" for a, o in RULES],
              "seeds": list(range(args.seeds)), "setting": {"d": 50, "k": 5, "M": 100, "sparsity": 5, "noise": 1.0,
                                                            "n_target": 20},
              "rows": rows, "summary": summary, "wall_seconds": round(time.perf_counter() - start, 1),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label in result["labels"]:
            m = [summary[f"{label}|{t}"]["mean"] for t in result["totals"]]
            ax.plot(result["totals"], m, marker="o", label=label, ls="--" if "known" in label else "-")
        ax.set_xlabel("total source samples")
        ax.set_ylabel("target excess risk")
        ax.set_yscale("log")
        ax.set_title(f"Lasso A-MTRL, linear setting ({args.seeds} seeds)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=120)
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
    for label in result["labels"]:
        print(label, " ".join(f"{summary[f'{label}|{t}']['mean']:.3f}" for t in result["totals"]))


if __name__ == "__main__":
    main()
