"""The "what was tried" rows of the README's icl table, measured side by side with linear_probe.

    python benchmarks/icl/variants.py --data-root ../shared/data/text [--out benchmarks/icl/variants.json]

Module A (benchmarks/icl/module_a: width 32, 2-10 classes, 2,000 steps) and the shipped module
B on the bench's 11 tasks and k-shot draws: A alone (5 seeds); A with a test-time ensemble over 4
random 75 % feature subsets against A alone on the same 2 seeds (chunks of 1,024); A on
banking77 with chunks of 1,024 vs 2,048 (2 seeds); A and B with log-probabilities averaged
(5 seeds). Accuracy minus the probe's, mean over tasks, in points. The stopped wider run's
synthetic validation log is benchmarks/icl/wide_module_stopped_log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from anytask.backbones import get_embedder
from anytask.experiments.tasks import prepare_tasks
from anytask.methods.heads import create_head

TASKS = "sst2,rotten_tomatoes,sms_spam,youtube,imdb,ag_news,dbpedia,subj,trec,financial_phrasebank,banking77"
SHOTS = (2, 4, 8, 16, 32, 64)
A = str(Path(__file__).resolve().parent / "module_a")


def icl_logp(module, X, y, Q, max_context=2048, cols=None):
    if cols is not None:
        X, Q = X[:, cols], Q[:, cols]
    head = create_head("icl", module=module, max_context=max_context).fit(X, y)
    return head.classes_, np.log(head.predict_proba(Q) + 1e-12)


def variants(X, y, Q):
    out = {}
    classes, a = icl_logp(A, X, y, Q)
    out["A"] = classes[a.argmax(1)]
    _, b = icl_logp("classification", X, y, Q)
    out["A+B"] = classes[(a + b).argmax(1)]
    _, a1024 = icl_logp(A, X, y, Q, max_context=1024)
    out["A chunks 1024"] = classes[a1024.argmax(1)]
    rng = np.random.default_rng(0)
    total = 0
    for _ in range(4):
        total = total + icl_logp(A, X, y, Q, 1024, rng.permutation(X.shape[1])[: int(0.75 * X.shape[1])])[1]
    out["A + feature-subset ensemble (chunks 1024)"] = classes[total.argmax(1)]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--out", default="benchmarks/icl/variants.json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    tasks, _ = prepare_tasks(TASKS.split(","), data_root=args.data_root, shots=SHOTS, seeds=range(5),
                             embedder=get_embedder("minilm"))
    diffs: dict = {}
    for task in tasks:
        for k in SHOTS:
            for seed in range(5):
                idx = task.shot_indices(k, seed)
                X, y = task.X_train[idx], task.y_train[idx]
                probe = np.mean(create_head("linear_probe").fit(X, y).predict(task.X_test) == task.y_test)
                for name, pred in variants(X, y, task.X_test).items():
                    diffs.setdefault(name, []).append(
                        {"task": task.name, "k": k, "seed": seed, "minus_probe": float(np.mean(pred == task.y_test) - probe)})
    summary = {}
    for name, rows in diffs.items():
        summary[name] = {"5 seeds": {k: round(100 * np.mean([r["minus_probe"] for r in rows if r["k"] == k]), 2)
                                     for k in SHOTS},
                         "seeds 0-1": {k: round(100 * np.mean([r["minus_probe"] for r in rows
                                                               if r["k"] == k and r["seed"] < 2]), 2) for k in SHOTS},
                         "banking77, seeds 0-1": {k: round(100 * np.mean([r["minus_probe"] for r in rows if r["k"] == k
                                                                          and r["seed"] < 2 and r["task"] == "banking77"]), 2)
                                                  for k in SHOTS}}
    Path(args.out).write_text(json.dumps({"command": "python benchmarks/icl/variants.py --data-root ../shared/data/text",
                                          "points_minus_probe": summary, "rows": diffs}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
