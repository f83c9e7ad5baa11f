"""Out-of-distribution fine-tuning: AdamW vs SAM vs ASAM vs TRAM, fine-tuned on SST-2, tested on
rotten_tomatoes and imdb (same labels, other domains), as in TRAM's cross-domain tables.

    python benchmarks/tram/ood.py --data-root ../shared/data/text --seeds 3 --steps 200 \\
        --optimizers adamw,sam,tram,tram-initial

For every seed: ``--train`` SST-2 training texts (seeded); a copy of MiniLM fine-tuned with each
optimiser (``anytask.methods.finetune.finetune``: frozen label-name head over "negative"/"positive",
embeddings frozen, AdamW as the base optimiser, batch 32, ``--max-length`` tokens, warm-up +
cosine); accuracy on the SST-2 test set (in domain) and on fixed subsets of rotten_tomatoes and
imdb test (out of domain), all scored at 64 tokens. ``tram`` uses the previous step's model as
the trust-region target (TRAM-theta_{t-1}), ``tram-initial`` the pre-trained model, ``tram-noise``
the current model on noised input embeddings (TRAM-x, sigma 0.1). The zero-shot row is the
pre-trained model with the same head. Each row records the wall time and the number of
forward/backward passes per step. Rows are written as they finish.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from anytask.backbones.hf import minilm_path
from anytask.data.sources import load_task
from anytask.methods.finetune.finetune import finetune, predict

NAMES = ["negative", "positive"]
PASSES = {"adamw": "1 fwd + 1 bwd", "sam": "2 fwd + 2 bwd", "asam": "2 fwd + 2 bwd", "tram": "3 fwd + 2 bwd",
          "tram-initial": "3 fwd + 2 bwd", "tram-noise": "3 fwd + 2 bwd"}


def test_split(data_root, name, n):
    _, test = load_task(data_root, name)
    idx = np.sort(np.random.default_rng(0).choice(len(test.y), size=min(n, len(test.y)), replace=False))
    return [test.X[i] for i in idx], np.array([NAMES.index(test.y[i]) for i in idx])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--optimizers", default="adamw,sam,tram,tram-initial")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--max-test", type=int, default=1000)
    ap.add_argument("--out", default="benchmarks/tram/ood.json")
    args = ap.parse_args(argv)
    train, _ = load_task(args.data_root, "sst2")
    y_train = np.array([NAMES.index(v) for v in train.y])
    tests = {t: test_split(args.data_root, t, args.max_test) for t in ("sst2", "rotten_tomatoes", "imdb")}
    work = Path(tempfile.mkdtemp(prefix="tram-ood-"))
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/tram/ood.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "rows": []}

    def log(**row):
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps(result, indent=1))

    def evaluate(folder):
        return {t: float(np.mean(predict(folder, X, NAMES, base=minilm_path()) == y)) for t, (X, y) in tests.items()}

    log(optimizer="zero_shot", seed=None, acc=evaluate(minilm_path()))
    for seed in range(args.seeds):
        idx = np.random.default_rng(seed).choice(len(y_train), size=args.train, replace=False)
        texts, labels = [train.X[i] for i in idx], y_train[idx]
        for name in args.optimizers.split(","):
            optimizer, _, target = name.partition("-")
            t0 = time.perf_counter()
            info = finetune(minilm_path(), texts, labels, NAMES, work / name, steps=args.steps, lr=args.lr,
                            max_length=args.max_length, optimizer=optimizer, tram_target=target or "previous",
                            seed=seed, progress=False)
            seconds = time.perf_counter() - t0
            distances = [h["distance"] for h in info["history"] if "distance" in h]
            log(optimizer=name, seed=seed, acc=evaluate(work / name), train_seconds=round(seconds, 1),
                seconds_per_step=round(info["history"][-1]["seconds"] / args.steps, 3), passes=PASSES[name],
                final_loss=float(np.mean([h["loss"] for h in info["history"][-20:]])),
                distance_mean=float(np.mean(distances)) if distances else None)


if __name__ == "__main__":
    main()
