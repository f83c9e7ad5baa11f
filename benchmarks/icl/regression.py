"""In-context regression (BraInCoRL's claim) on a real target: scikit-learn's diabetes data.

    python benchmarks/icl/regression.py [--seeds 10] [--out benchmarks/icl/regression.json]

For each context size n, n patients are drawn at random as the context and the other
patients are the queries; R^2 on the queries for the in-context regressor (no gradient step),
RidgeCV (penalty chosen by leave-one-out on the context, scikit-learn's default grid widened),
ordinary least squares and the context mean. BraInCoRL's trend: in-context beats the
per-target fit when n is small; the gap closes as n grows.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import r2_score

from anytask.methods.icl.regressor import ICLRegressor

SIZES = (5, 10, 20, 50, 100, 200)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/icl/regression.json")
    args = ap.parse_args(argv)
    X, y = load_diabetes(return_X_y=True)
    methods = {
        "icl": lambda: ICLRegressor(),
        "ridge_cv": lambda: RidgeCV(alphas=np.logspace(-4, 4, 33)),
        "ols": lambda: LinearRegression(),
    }
    rows = []
    for n in SIZES:
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(X))
            ctx, qry = order[:n], order[n:]
            for name, make in methods.items():
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pred = make().fit(X[ctx], y[ctx]).predict(X[qry])
                rows.append({"n": n, "seed": seed, "method": name, "r2": float(r2_score(y[qry], pred)),
                             "seconds": time.perf_counter() - t0})
            rows.append({"n": n, "seed": seed, "method": "context_mean", "seconds": 0.0,
                         "r2": float(r2_score(y[qry], np.full(len(qry), y[ctx].mean())))})
    summary = {}
    for name in [*methods, "context_mean"]:
        summary[name] = {}
        for n in SIZES:
            vals = [r["r2"] for r in rows if r["method"] == name and r["n"] == n]
            summary[name][n] = {"mean": round(float(np.mean(vals)), 4), "std": round(float(np.std(vals)), 4),
                                "median": round(float(np.median(vals)), 4)}
    out = {"data": "sklearn load_diabetes (442 patients, 10 features)", "sizes": SIZES, "seeds": args.seeds,
           "command": "python benchmarks/icl/regression.py", "summary": summary, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print("R^2 mean ± std (median) over seeds")
    print("| method | " + " | ".join(f"n={n}" for n in SIZES) + " |")
    for name, by_n in summary.items():
        print(f"| {name} | " + " | ".join(f"{v['mean']:.3f} ± {v['std']:.3f} ({v['median']:.3f})"
                                          for v in by_n.values()) + " |")


if __name__ == "__main__":
    main()
