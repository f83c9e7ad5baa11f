"""The best few-shot classifier: every head, SetFit and the contrastive head side by side, with wall times.

    python benchmarks/spine/best_head.py --data-root ../shared/data/text --shots 8,16 --seeds 3 \\
        --methods linear_probe,contrastive,setfit --out benchmarks/spine/best_head_slow.json
    python benchmarks/spine/best_head.py --data-root ../shared/data/text --shots 4,8,16,32,64 --seeds 3 \\
        --methods linear_probe,linear_probe+names,zero_shot,icl,icl+names,auto --out benchmarks/spine/best_head_fast.json
    python benchmarks/spine/best_head_summary.py   # merges the parts into best_head.json, table and plot

Every (task, k, seed) draws k training examples per class exactly as ``anytask bench`` does
(``k_shot_indices`` with ``task_seed(task, k, seed)``) and scores every method on the same fixed test
rows (``eval_indices``, at most ``--max-test``). The clock covers what a user waits for, from raw texts:

* heads over features (``linear_probe``, ``linear_probe+names`` = the probe with ``label_prior=8``,
  ``zero_shot``, ``icl``, ``icl+names`` = ``label_prior=8``, ``auto``): fit = embedding the training
  texts with the frozen encoder (no cache) + the head's fit; predict = embedding the test texts (no
  cache; timed once per task) + the head's predict;
* ``contrastive``: ``ContrastiveHead.fit(texts)`` and ``.predict_proba(texts)``;
* ``setfit``: SetFit 1.2 (benchmark-only install, ``pip install setfit==1.2.0``) with its defaults
  (oversampled unique pairs, one epoch, batch 16) capped at ``--setfit-max-steps`` pair batches, as in
  ``benchmarks/prompting/few_shot.py``; its predict embeds the test texts with the tuned body.

Label names are the labels as they appear in the data (``_`` read as a space), or the short
descriptions in ``anytask.data.LABEL_DESCRIPTIONS`` for the four tasks with terse codes. No setting
was chosen on these test splits (see the notes). Loops run shots -> seeds -> tasks; every finished
configuration is written at once, and ``--resume`` skips rows already in ``--out``
(``--seeds-first``: seeds -> shots -> tasks, so a run cut short has every shot count for its seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic
from anytask.data import LABEL_DESCRIPTIONS, eval_indices, k_shot_indices, load_dataset, task_seed
from anytask.experiments.runner import expected_calibration_error

FEATURE_METHODS = {  # name -> (registry head, parameters)
    "linear_probe": ("linear_probe", {}),
    "linear_probe+names": ("linear_probe", {"label_prior": 8}),
    "zero_shot": ("zero_shot", {}),
    "icl": ("icl", {}),
    "icl+names": ("icl", {"label_prior": 8}),
    "auto": ("auto", {}),
}


def train_setfit(texts, y, seed, args):
    """SetFit 1.2 with the prompting benchmark's recipe (its own function: one SetFit set-up for both)."""
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "prompting"))
    from base_to_novel import train_setfit as prompting_setfit

    return prompting_setfit(texts, y, seed, SimpleNamespace(max_length=args.max_length, setfit_iterations=0,
                                                             setfit_batch=16, setfit_max_steps=args.setfit_max_steps))


def score(proba: np.ndarray, classes, y_test) -> dict:
    pred = np.asarray(classes, dtype=object)[proba.argmax(1)]
    correct = pred.astype(str) == np.asarray(y_test).astype(str)
    return {"accuracy": round(float(correct.mean()), 4), "ece": round(expected_calibration_error(proba, correct), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=None, help="comma-separated; default: every task under --data-root")
    ap.add_argument("--shots", default="4,8,16,32,64")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds instead of 0..--seeds-1 (to split a run "
                                                       "over processes)")
    ap.add_argument("--methods", default=",".join([*FEATURE_METHODS, "contrastive", "setfit"]))
    ap.add_argument("--max-test", type=int, default=200)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--setfit-max-steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seeds-first", action="store_true",
                    help="loop seeds -> shots -> tasks (every shot count gets a whole seed before the next seed)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default="benchmarks/spine/best_head.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.backbones import get_embedder
    from anytask.data.sources import list_tasks
    from anytask.methods.finetune.contrastive import ContrastiveHead
    from anytask.methods.heads import create_head_for

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    methods = args.methods.split(",")
    unknown = set(methods) - set(FEATURE_METHODS) - {"contrastive", "setfit"}
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}")
    tasks = args.tasks.split(",") if args.tasks else list_tasks(args.data_root)
    fresh = get_embedder("minilm", use_cache=False)
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/spine/best_head.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "torch_threads": torch.get_num_threads(), "rows": []}
    if args.resume and out.is_file():
        result["rows"] = json.loads(out.read_text())["rows"]
    done = {(r["task"], r["shots"], r["seed"], r["method"]) for r in result["rows"]}
    data = {}
    for name in tasks:
        train, test = load_dataset(name, data_root=args.data_root)
        test = test.subset(eval_indices(name, len(test), args.max_test))
        start = time.perf_counter()
        X_test = fresh.embed(list(test.X))  # the test rows' frozen embeddings, timed once per task
        data[name] = (train, test, X_test, time.perf_counter() - start)

    def save():
        write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())

    shots = list(map(int, args.shots.split(",")))
    seeds = [int(v) for v in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    order = ([(k, seed) for seed in seeds for k in shots] if args.seeds_first else
             [(k, seed) for k in shots for seed in seeds])
    for k, seed in order:
        for name in tasks:
            train, test, X_test, test_embed_s = data[name]
            todo = [m for m in methods if (name, k, seed, m) not in done]
            if not todo:
                continue
            idx = k_shot_indices(train.y, k, task_seed(name, k, seed))
            texts, y = [train.X[i] for i in idx], np.asarray(train.y)[idx]
            descriptions = LABEL_DESCRIPTIONS.get(name) or None
            base = {"task": name, "shots": k, "seed": seed, "n_train": len(y), "n_test": len(test.y)}
            X_train = embed_s = None
            for method in todo:
                info = {}
                if method in FEATURE_METHODS:
                    if X_train is None:
                        start = time.perf_counter()
                        X_train = fresh.embed(texts)
                        embed_s = time.perf_counter() - start
                    head_name, params = FEATURE_METHODS[method]
                    start = time.perf_counter()
                    head = create_head_for(head_name, "minilm", None, **params,
                                           **({"descriptions": descriptions} if descriptions else {}))
                    head.fit(X_train, y)
                    fit_s = embed_s + time.perf_counter() - start
                    start = time.perf_counter()
                    proba = head.predict_proba(X_test)
                    predict_s = test_embed_s + time.perf_counter() - start
                    classes = head.classes_
                    if method == "auto":
                        info = {"chosen": head.chosen_, "cv_seconds": head.report_["seconds"]}
                elif method == "contrastive":
                    start = time.perf_counter()
                    head = ContrastiveHead(seed=seed, max_length=args.max_length).fit(texts, y)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    proba = head.predict_proba(list(test.X))
                    predict_s = time.perf_counter() - start
                    classes = head.classes_
                    info = {"steps": head.n_steps_, "stopped": getattr(head, "stopped_", None)}
                else:  # setfit
                    start = time.perf_counter()
                    model, steps = train_setfit(texts, y, seed, args)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    proba = np.asarray(model.predict_proba(list(test.X), as_numpy=True))
                    predict_s = time.perf_counter() - start
                    classes = [str(c) for c in model.model_head.classes_]  # scikit-learn's head: sorted
                    info = {"steps": steps}
                row = {**base, "method": method, **score(proba, classes, test.y),
                       "fit_seconds": round(fit_s, 3), "predict_seconds": round(predict_s, 3), **info}
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
            save()
    save()


if __name__ == "__main__":
    main()
