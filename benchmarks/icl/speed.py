"""Speed and memory of the icl head: fit + predict for 64 context examples and 1,000 queries.

    python benchmarks/icl/speed.py [--repeats 20] [--out benchmarks/icl/speed.json]

Features are 384-d (MiniLM's width); the shipped module is loaded once before timing (a
process does that once). Reports wall time per fit + predict (median and spread over
repeats) for binary and 10-class contexts of 64 examples, a 77-class context of 4 per class,
and the peak resident memory of the process, beside linear_probe on the same arrays.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import numpy as np
import torch

from anytask.methods.heads import create_head
from anytask.methods.icl.head import load_module


def timed(head_name: str, X, y, Q, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        create_head(head_name).fit(X, y).predict_proba(Q)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/icl/speed.json")
    args = ap.parse_args(argv)
    load_module("classification")
    rng = np.random.default_rng(0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cases = {"64 examples, 2 classes": (64, 2), "64 examples, 10 classes": (64, 10),
             "308 examples, 77 classes": (308, 77)}
    out = {"torch_threads": torch.get_num_threads(), "platform": platform.platform(),
           "processor": platform.processor(), "queries": 1000, "dim": 384, "repeats": args.repeats, "cases": {}}
    for label, (n, C) in cases.items():
        X = rng.normal(size=(n, 384)).astype(np.float32)
        y = np.arange(n) % C
        Q = rng.normal(size=(1000, 384)).astype(np.float32)
        row = {}
        for head in ("icl", "linear_probe"):
            t = timed(head, X, y, Q, args.repeats)
            row[head] = {"median_s": round(float(np.median(t)), 4), "p90_s": round(float(np.quantile(t, 0.9)), 4)}
        out["cases"][label] = row
        print(label, row)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["rss_before_timing_mb"] = round(rss0 / 1024, 1)
    out["command"] = "python benchmarks/icl/speed.py"
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"peak RSS {out['peak_rss_mb']} MB (before timing {out['rss_before_timing_mb']} MB)")


if __name__ == "__main__":
    main()
