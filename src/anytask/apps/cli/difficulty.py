"""``anytask difficulty``: a task's inductive-bias complexity (bits needed beyond its training data)."""

from __future__ import annotations

import json
import os

from anytask.apps.cli.common import backbone_opts, positive_int


def add_parser(sub) -> None:
    sp = sub.add_parser("difficulty", help="inductive-bias complexity of a task (Boopathy et al. 2023), with its "
                        "estimated inputs")
    backbone_opts(sp)
    sp.add_argument("--task", required=True, help="a folder of the data root, sklearn:digits, synthetic:topics, ...")
    sp.add_argument("--data-root", default=os.environ.get("ANYTASK_DATA_ROOT"),
                    help="folder of <task>/{train,test}.jsonl (default $ANYTASK_DATA_ROOT)")
    sp.add_argument("--error", type=float, default=0.01, help="target error rate ε (default 0.01)")
    sp.add_argument("--max-n", type=positive_int, default=2000,
                    help="training points used, drawn at random (default 2,000; n in the formula)")
    sp.add_argument("--delta", default="sample", help="how δ is estimated: sample (default), evt, or a number")
    sp.add_argument("--m", type=float, default=None, help="intrinsic dimension (default: estimated, k = 5)")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=run)


def run(args) -> None:
    import numpy as np

    from anytask.core.errors import AnytaskError
    from anytask.data import load_dataset
    from anytask.methods.mechanisms.difficulty import task_difficulty

    train, _ = load_dataset(args.task, data_root=args.data_root)
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(train), size=min(args.max_n, len(train)), replace=False))
    y = np.asarray(train.y)[idx]
    if train.is_text:
        from anytask.backbones import get_embedder

        X = get_embedder(args.backbone, cache_dir=args.cache_dir, device=args.device).embed([train.X[i] for i in idx])
        space = f"{args.backbone} embeddings"
    else:
        X, space = np.asarray(train.X, np.float64)[idx], "the features as given"
    try:
        delta = float(args.delta)
    except ValueError:
        delta = args.delta
    if isinstance(delta, str) and delta not in ("sample", "evt"):
        raise AnytaskError(f"--delta {args.delta!r}: use sample, evt or a positive number")
    r = task_difficulty(X, y, error=args.error, m=args.m, delta=delta, seed=args.seed)
    log10 = r["log10_bits"]
    print(json.dumps({"task": args.task, "space": space, "bits": r["bits"],
                      "log10_bits": None if log10 is None else round(log10, 3), **r["inputs"],
                      "estimated": r["estimated"]}))
