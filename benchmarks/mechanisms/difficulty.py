"""Inductive-bias complexity (card 27): the reference table, MNIST and digits in pixel space, and the
shared text tasks as MiniLM sees them, ranked against the linear probe's error at 16 per class.

    python benchmarks/mechanisms/difficulty.py --out benchmarks/mechanisms/difficulty.json

Text tasks: a pool of 2,500 training texts per task (seeded), embedded once; per seed a random 2,000 of
them give n, m (MLE, k = 5), δ (sample minimum over the 2,000, duplicates dropped) and R (1: MiniLM's
embeddings are unit vectors), at ε = 0.01. A task's value is the median over seeds of log10 Ĩ, where 0
bits (the data leaves no hypothesis to choose) counts as below every positive value. The probe errors come from benchmarks/spine/few_shot.json
(same backbone, 5 seeds), so nothing is tuned here.
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
SHARED = ROOT.parent / "shared" / "data"
REFERENCE = {  # official parameters (error, n, m, R, classes, delta) and the card's values in bits
    "MNIST": ((0.001, 60000, 14, 17.179045827183984, 10, 2.3987084824335305), 1.49e16),
    "SVHN": ((0.01, 73257, 19, 53.86932485133339, 10, 1.5766998174969105), 1.21e31),
    "CIFAR-10": ((0.01, 50000, 27, 54.9156786783691, 10, 2.7506414616587023), 3.44e32),
    "ImageNet": ((0.1, 1280901, 48, 943.5923, 1000, 65), 3.58e41),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--pool", type=int, default=2500)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--error", type=float, default=0.01)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "mechanisms" / "difficulty.json"))
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    from anytask.backbones import get_embedder
    from anytask.data import load_dataset
    from anytask.methods.mechanisms.difficulty import complexity_bits, task_difficulty

    reference = []
    for name, (params, card) in REFERENCE.items():
        e, n, m, R, c, d = params
        out = complexity_bits(error=e, n=n, m=m, R=R, classes=c, delta=d)
        reference.append({"task": name, "error": e, "n": n, "m": m, "R": R, "classes": c, "delta": d,
                          "bits": out["bits"], "card_bits": card})
        print(json.dumps(reference[-1]), flush=True)

    pixels = []
    mnist = SHARED / "vision" / "mnist_test.npz"
    if mnist.is_file():
        data = np.load(mnist)
        X = data["images"].reshape(len(data["images"]), -1).astype(np.float64) / 255.0
        y = data["labels"]
        for seed in seeds:
            for delta in ("sample", "evt"):
                r = task_difficulty(X, y, error=0.001, delta=delta, seed=seed)
                pixels.append({"task": "MNIST test (10k, pixels in [0, 1])", "seed": seed, "delta_method": delta,
                               **r["inputs"], "bits": r["bits"], "log10_bits": r["log10_bits"]})
                print(json.dumps(pixels[-1]), flush=True)
    from sklearn.datasets import load_digits

    Xd, yd = load_digits(return_X_y=True)
    for seed in seeds:
        r = task_difficulty(Xd / 16.0, yd, error=0.001, seed=seed)
        pixels.append({"task": "scikit-learn digits (1,797, pixels in [0, 1])", "seed": seed, "delta_method": "sample",
                       **r["inputs"], "bits": r["bits"], "log10_bits": r["log10_bits"]})

    probe = json.loads((ROOT / "benchmarks" / "spine" / "few_shot.json").read_text())
    error16 = {}
    for row in probe["results"]:
        if row["head"] == "linear_probe" and row["shots_per_class"] == 16:
            error16.setdefault(row["task"], []).append(1 - row["accuracy"])
    embedder = get_embedder("minilm")
    text = []
    for task in probe["tasks"]:
        if not (SHARED / "text" / task / "train.jsonl").is_file():
            continue
        train, _ = load_dataset(task, data_root=SHARED / "text")
        pool = np.sort(np.random.default_rng(0).choice(len(train), size=min(args.pool, len(train)), replace=False))
        X_pool = embedder.embed([train.X[i] for i in pool])
        y_pool = np.asarray(train.y)[pool]
        for seed in seeds:
            pick = np.random.default_rng(seed).choice(len(pool), size=min(args.n, len(pool)), replace=False)
            r = task_difficulty(X_pool[pick], y_pool[pick], error=args.error, seed=seed)
            text.append({"task": task, "seed": seed, **r["inputs"], "bits": r["bits"], "log10_bits": r["log10_bits"],
                         "probe_error_16": float(np.mean(error16[task]))})
            print(json.dumps(text[-1]), flush=True)

    from scipy.stats import spearmanr

    def log_bits(t: dict) -> float:  # 0 bits (the data leaves no hypothesis to choose) ranks below every other
        return t["log10_bits"] if t["log10_bits"] is not None else -1.0

    tasks = sorted({t["task"] for t in text})
    median_log = [float(np.median([log_bits(t) for t in text if t["task"] == k])) for k in tasks]
    errors = [np.mean(error16[k]) for k in tasks]
    rho, pval = spearmanr(median_log, errors)
    per_seed = [float(spearmanr([log_bits(t) for k in tasks for t in text if t["seed"] == s and t["task"] == k],
                                errors)[0]) for s in seeds]
    result = {"command": "python " + " ".join(["benchmarks/mechanisms/difficulty.py", *sys.argv[1:]]),
              "reference": reference, "pixels": pixels, "text": text,
              "spearman_log_bits_vs_probe_error": {"rho": float(rho), "p": float(pval), "per_seed": per_seed,
                                                   "tasks": len(tasks)},
              "args": vars(args),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["spearman_log_bits_vs_probe_error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
