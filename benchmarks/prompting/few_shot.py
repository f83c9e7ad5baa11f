"""Few-shot accuracy and adaptation wall time: prompt tuning vs SetFit vs a linear probe, MiniLM.

    python benchmarks/prompting/few_shot.py --data-root ../shared/data/text --shots 8,16,32 --seeds 3 \\
        [--tasks ...] [--methods prompts,promptsrc,linear_probe,setfit] [--out F]

For every task of ``--data-root`` (the 11 of ``../shared/data/text`` by default), k examples per
class are drawn per seed (k = 8, 16, 32); every method trains on the same examples in the same
process and is scored on the same fixed test rows (at most ``--max-test``). The clock covers what a
user waits for to adapt, from the raw training texts to a fitted classifier:

* ``prompts`` / ``promptsrc``: ``PromptTuning.fit`` (plain deep prompts / PromptSRC), 20 epochs
  of batch 4 (the paper's base-to-novel recipe) capped at ``--max-steps`` optimiser steps (banking77 and dbpedia at larger k);
* ``linear_probe``: embedding the training texts with the frozen encoder (no cache) plus the
  logistic regression;
* ``setfit``: SetFit 1.2 with its defaults (oversampled unique pairs, one epoch, batch 16, body
  lr 2e-5) capped at ``--setfit-max-steps`` pair batches, plus its logistic head.

Loops run shots -> seeds -> tasks, so an interrupted run has whole (k, seed) sweeps. Rows are
appended as they finish. Summary and plot: ``python benchmarks/prompting/few_shot_summary.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from anytask.data.sources import LABEL_DESCRIPTIONS, list_tasks, load_task
from anytask.methods.heads import create_head
from anytask.core.io import write_file_atomic

from base_to_novel import k_shot, train_setfit


def fixed_test(test, max_test):
    y = np.asarray(test.y)
    idx = np.sort(np.random.default_rng(1).choice(len(y), size=min(max_test, len(y)), replace=False))
    return [test.X[i] for i in idx], y[idx]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=None, help="comma-separated; default: every task under --data-root")
    ap.add_argument("--shots", default="8,16,32")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="linear_probe,prompts,promptsrc,setfit")
    ap.add_argument("--max-test", type=int, default=300)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--setfit-iterations", type=int, default=0, help="0: SetFit 1.2's default sampling")
    ap.add_argument("--setfit-batch", type=int, default=16)
    ap.add_argument("--setfit-max-steps", type=int, default=300)
    ap.add_argument("--out", default="benchmarks/prompting/few_shot.json")
    args = ap.parse_args(argv)
    from anytask.backbones import get_embedder

    tasks = args.tasks.split(",") if args.tasks else list_tasks(args.data_root)
    cached = get_embedder("minilm").embed  # test rows only (not timed)
    fresh = get_embedder("minilm", use_cache=False).embed  # training texts, inside the clock
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/prompting/few_shot.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "rows": []}
    data = {}
    for name in tasks:
        train, test = load_task(args.data_root, name)
        y_tr = np.asarray(train.y)
        data[name] = (list(train.X), y_tr, sorted(set(y_tr.tolist()), key=str), *fixed_test(test, args.max_test))

    for k in map(int, args.shots.split(",")):
        for seed in range(args.seeds):
            for name in tasks:
                X_tr, y_tr, classes, X_te, y_te = data[name]
                idx = k_shot(y_tr, classes, k, seed)
                texts, y = [X_tr[i] for i in idx], y_tr[idx]
                for method in args.methods.split(","):
                    extra = {}
                    t0 = time.perf_counter()
                    if method in ("prompts", "promptsrc"):
                        head = create_head("prompt_tuning", descriptions=LABEL_DESCRIPTIONS.get(name),
                                           self_regulating=method == "promptsrc", epochs=args.epochs, lr=args.lr,
                                           batch_size=args.batch_size, max_length=args.max_length,
                                           max_steps=args.max_steps, seed=seed).fit(texts, y)
                        seconds = time.perf_counter() - t0
                        pred, extra = head.predict(X_te), {"steps": head.n_steps_}
                    elif method == "linear_probe":
                        head = create_head("linear_probe").fit(fresh(texts), y)
                        seconds = time.perf_counter() - t0
                        pred = head.predict(cached(X_te))
                    elif method == "setfit":
                        model, steps = train_setfit(texts, y, seed, args)
                        seconds = time.perf_counter() - t0
                        pred, extra = np.asarray(model.predict(X_te), dtype=object), {"steps": steps}
                    else:
                        raise SystemExit(f"unknown method {method!r}; choose from prompts, promptsrc, linear_probe, setfit")
                    acc = float(np.mean(np.asarray(pred).astype(str) == y_te.astype(str)))
                    row = dict(task=name, shots=k, seed=seed, method=method, accuracy=acc,
                               fit_seconds=round(seconds, 2), n_train=len(texts), n_test=len(y_te), **extra)
                    result["rows"].append(row)
                    print(json.dumps(row), flush=True)
                    write_file_atomic(out, json.dumps(result, indent=1).encode())


if __name__ == "__main__":
    main()
