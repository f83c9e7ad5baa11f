"""Uni-Perceiver v2 on text: per-task specialists vs one generalist (mixed / unmixed / unmixed + balanced).

    python benchmarks/retrieval/generalist.py --seeds 0,1,2 --out benchmarks/retrieval/generalist.json

Card 05's mechanism test. Four tasks share one formulation (cosine to candidate targets, a temperature per
task) through one small decoder (2 layers, 4 heads) over frozen MiniLM token states (first 64 tokens):

* ``ag_news`` (4 classes), ``trec`` (6 coarse classes, named by ``LABEL_DESCRIPTIONS``) and ``banking77``
  (77 classes): ``--train`` examples per task drawn from the training split (seed 0), accuracy on
  ``--test`` test examples;
* ``cisi``: query → document retrieval; the judged queries are split in half by a fixed draw, the first
  half's (query, relevant document) pairs train, MAP of the second half ranks all 1,460 documents.

Configurations, each trained ``--steps`` steps with the same batch size and learning rate:
``specialists`` (one model per task, each with the full step budget: the reference, at four times the
compute), ``mixed`` (every batch holds every task, losses summed by task weight), ``unmixed`` (one task
per step, drawn uniformly) and ``unmixed+balanced`` (plus task-balanced gradient normalisation). Loss
variance: for every task, the standard deviation of its training losses over the second half of the
steps, averaged over tasks (lower = steadier). Settings are the card's and the model's defaults, chosen
before any run; nothing is selected on test data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic

CLASSIFY = ("ag_news", "trec", "banking77")
CONFIGS = {"specialists": None, "mixed": ("mixed", False), "unmixed": ("unmixed", False),
           "unmixed+balanced": ("unmixed", True)}


def load_tasks(text_root: Path, cisi_root: Path, n_train: int, n_test: int, classify=CLASSIFY, seed: int = 0):
    """Training and test sets of the ``classify`` tasks (``n_train`` / ``n_test`` drawn by ``seed``) and CISI's
    judged queries split in half by the same draw (pairs of the first half train; the second half is ranked)."""
    from anytask.data.sources import LABEL_DESCRIPTIONS

    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for name in classify:
        rows = {split: [json.loads(line) for line in (text_root / name / f"{split}.jsonl").read_text().splitlines()
                        if line.strip()] for split in ("train", "test")}
        tr = [rows["train"][i] for i in rng.choice(len(rows["train"]), size=min(n_train, len(rows["train"])),
                                                   replace=False)]
        te = [rows["test"][i] for i in rng.choice(len(rows["test"]), size=min(n_test, len(rows["test"])),
                                                  replace=False)]
        names = LABEL_DESCRIPTIONS.get(name, {})
        train[name] = {"texts": [r["text"] for r in tr], "labels": [str(r["label"]) for r in tr], "label_names": names}
        test[name] = ([r["text"] for r in te], [str(r["label"]) for r in te])
    docs = [json.loads(line) for line in (cisi_root / "docs.jsonl").read_text().splitlines() if line.strip()]
    doc_text = {d["id"]: f"{d.get('title', '')}. {d['text']}" for d in docs}
    queries = {q["id"]: q["text"] for q in (json.loads(line) for line in
                                            (cisi_root / "queries.jsonl").read_text().splitlines() if line.strip())}
    rel: dict[str, list[str]] = {}
    for line in (cisi_root / "qrels.tsv").read_text().splitlines()[1:]:
        q, d, r = line.split("\t")
        if int(r) > 0 and d in doc_text:
            rel.setdefault(q, []).append(d)
    judged = sorted(rel, key=int)
    order = rng.permutation(len(judged))
    fit_q, eval_q = [judged[i] for i in order[: len(judged) // 2]], [judged[i] for i in order[len(judged) // 2:]]
    train["cisi"] = {"queries": [queries[q] for q in fit_q for _ in rel[q]],
                     "targets": [doc_text[d] for q in fit_q for d in rel[q]]}
    ids = list(doc_text)
    pos = {d: i for i, d in enumerate(ids)}
    test["cisi"] = ([queries[q] for q in eval_q], [doc_text[d] for d in ids], [{pos[d] for d in rel[q]} for q in eval_q])
    return train, test


def evaluate(models: dict, test: dict) -> dict:
    from anytask.methods.retrieval.metrics import evaluate as rank_metrics

    out = {}
    for name in CLASSIFY:
        texts, labels = test[name]
        out[name] = round(100 * float(np.mean(models[name].predict(name, texts) == np.array(labels, dtype=object))), 2)
    queries, docs, relevant = test["cisi"]
    S = models["cisi"].set_targets(docs).score(queries)
    order = np.argsort(-S, axis=1, kind="stable")
    out["cisi_map"] = round(100 * rank_metrics({i: order[i].tolist() for i in range(len(queries))},
                                               dict(enumerate(relevant)), ["map"])["map"], 2)
    return out


def loss_variance(model_losses: list[dict]) -> float:
    stds = [float(np.std(v[len(v) // 2:])) for losses in model_losses for v in losses.values() if len(v) >= 4]
    return round(float(np.mean(stds)), 4)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-root", default="../shared/data/text")
    ap.add_argument("--cisi", default="../shared/data/retrieval/cisi")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/retrieval/generalist.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.methods.retrieval.generalist import GeneralistRanker

    torch.set_num_threads(args.threads)
    train, test = load_tasks(Path(args.text_root), Path(args.cisi), args.train, args.test)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    result["commands"] = result.get("commands", []) + ["python benchmarks/retrieval/generalist.py "
                                                       + " ".join(argv or sys.argv[1:])]
    result["command"] = "\n".join(result["commands"])
    result["args"] = {k: v for k, v in vars(args).items() if k not in ("seeds", "configs", "out", "threads")}
    result["sizes"] = {name: len(t.get("texts", t.get("queries"))) for name, t in train.items()}

    def model(seed, **kw):
        return GeneralistRanker(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=seed, **kw)

    for seed in [int(s) for s in args.seeds.split(",")]:
        for config in args.configs.split(","):
            t0 = time.perf_counter()
            if CONFIGS[config] is None:
                models = {name: model(seed, balance=False).fit_tasks({name: task}) for name, task in train.items()}
                losses = [m.task_losses_ for m in models.values()]
            else:
                sampling, balance = CONFIGS[config]
                shared = model(seed, sampling=sampling, balance=balance).fit_tasks(train)
                models = {name: shared for name in train}
                losses = [shared.task_losses_]
            row = {"config": config, "seed": seed, "fit_seconds": round(time.perf_counter() - t0, 1),
                   **evaluate(models, test), "loss_std": loss_variance(losses)}
            row["mean_score"] = round(float(np.mean([row[n] for n in CLASSIFY] + [row["cisi_map"]])), 2)
            print(json.dumps(row), flush=True)
            result["rows"] = [r for r in result["rows"] if (r["config"], r["seed"]) != (config, seed)] + [row]
            write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
