"""Few-shot prompting of SmolLM2 (GPT-3 protocol, contextual calibration) against probes, same examples.

    python benchmarks/lm/prompting.py --data-root ../shared/data/text --seeds 3 --threads 1 \\
        --out benchmarks/lm/prompting.json
    python benchmarks/lm/prompting_summary.py      # table, goals and plot from the JSON

Every (task, seed) draws a labelled pool exactly as ``anytask bench`` does (``k_shot_indices`` with
``task_seed(task, pool, seed)``): ``--pool`` examples per class (8 for every task; 64 as well for the
sentiment tasks). On the same pool and the same fixed test rows (``eval_indices``, at most ``--max-test``;
``--max-test-many`` for tasks with more than 20 classes, which also run only ``--seeds-many`` seeds) it runs:

* ``lm_prompt`` on SmolLM2 with K in ``--ks`` demonstrations drawn from the pool (balanced over
  classes, one seeded set per (task, K, seed), ``demos="fixed"``); one scoring pass gives every
  normalisation (sum / per_token / per_byte / unconditional), each uncalibrated and contextually
  calibrated (content-free "N/A", "", "[MASK]");
* ``sum/fitted``: ``calibration="fitted"`` — the calibration map fitted on the pool's texts that are
  not in the prompt (skipped on banking77, whose 77 multi-token answers make scoring the pool slow);
* the spread over demonstration orders: K = ``--order-k``, seed 0, ``--orders`` permutations of the set
  (not on banking77: scoring its 77 multi-token answers takes ~3 s per text on two cores);
* ``probe_minilm``: the linear probe (C = 1) on all-MiniLM-L6-v2 embeddings of the pool;
* ``probe_smollm2``: the same probe on SmolLM2's mean-pooled final-layer states (raw, not
  L2-normalised: 5-fold CV on 200 SST-2 *training* texts gave 0.61 raw vs 0.52 normalised);
* ``icl_smollm2``: the shipped ``icl`` module (TART's reasoning head) on the same SmolLM2 states.

Prompts are one template per task written before any run (``TEMPLATES``) and label words
(``VERBALIZERS``, or the label with ``_`` read as a space). Test texts are cut at ``--max-chars``
characters at a word boundary for every method alike (only imdb's reviews are that long);
demonstrations at 300 (the head's default). Nothing was chosen on the test rows.
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
from anytask.data import eval_indices, k_shot_indices, load_dataset, task_seed

SENTIMENT = ("sst2", "rotten_tomatoes", "imdb", "financial_phrasebank")
TEMPLATES = {
    "sst2": "Review: {text}\nSentiment:", "rotten_tomatoes": "Review: {text}\nSentiment:",
    "imdb": "Review: {text}\nSentiment:", "financial_phrasebank": "Sentence: {text}\nSentiment:",
    "ag_news": "Article: {text}\nTopic:", "dbpedia": "Text: {text}\nCategory:",
    "trec": "Question: {text}\nAnswer type:", "banking77": "Query: {text}\nIntent:",
    "sms_spam": "Message: {text}\nType:", "youtube": "Comment: {text}\nType:", "subj": "Sentence: {text}\nType:",
}
VERBALIZERS = {
    "trec": {"ABBR": " abbreviation", "DESC": " description", "ENTY": " entity", "HUM": " person",
             "LOC": " location", "NUM": " number"},
    "sms_spam": {"ham": " normal", "spam": " spam"}, "youtube": {"ham": " normal", "spam": " spam"},
    "ag_news": {"Business": " business", "Sci/Tech": " science", "World": " world", "Sports": " sports"},
    "dbpedia": {"WrittenWork": " book", "Building": " building", "Album": " album", "Film": " film",
                "NaturalPlace": " nature", "Plant": " plant", "Company": " company", "EducationalInstitution": " school",
                "OfficeHolder": " politician", "Village": " village", "Athlete": " athlete",
                "MeanOfTransportation": " transport", "Animal": " animal", "Artist": " artist"},
}
SCORINGS = ("sum", "per_token", "per_byte", "unconditional")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def verbalizers(task: str, classes) -> dict:
    given = VERBALIZERS.get(task, {})
    return {str(c): given.get(str(c), " " + str(c).replace("_", " ")) for c in classes}


def accuracy(logp, classes, y_test) -> float:
    pred = np.asarray(classes, dtype=object)[np.asarray(logp).argmax(1)]
    return round(float((pred.astype(str) == np.asarray(y_test).astype(str)).mean()), 4)


def prompt_rows(head, test_X, test_y) -> tuple[dict, dict]:
    """Accuracy of every (scoring, calibration) from one scoring pass, and the answers' flips; with a
    fitted calibrator also ``sum/fitted``."""
    from anytask.methods.lm import calibrate, choice_scores

    raw = head.raw_scores(test_X)
    acc, preds = {}, {}
    if getattr(head, "calibrator_", None) is not None:
        acc["sum/fitted"] = accuracy(head.decide(raw), head.classes_, test_y)
    for mode in SCORINGS:
        s = choice_scores(raw["sums"], raw["n_tokens"], raw["n_bytes"], raw["unconditional"], mode)
        cf = choice_scores(raw["content_free"], raw["n_tokens"], raw["n_bytes"], raw["unconditional"], mode)
        for cal, logp in (("raw", calibrate(s, None)), ("cal", calibrate(s, cf))):
            acc[f"{mode}/{cal}"] = accuracy(logp.numpy(), head.classes_, test_y)
            preds[f"{mode}/{cal}"] = logp.argmax(1)
    flips = {cal: int(sum(bool((preds[f"{a}/{cal}"] != preds[f"{b}/{cal}"]).any())
                          for i, a in enumerate(SCORINGS) for b in SCORINGS[i + 1:]))
             for cal in ("raw", "cal")}
    changed = {cal: int(len({tuple(preds[f"{m}/{cal}"].tolist()) for m in SCORINGS}) > 1) for cal in ("raw", "cal")}
    return acc, {"pairs_differing": flips, "any_flip": changed}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=None)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds instead of 0..--seeds-1 (to split a "
                                                       "run over processes; merge the files with --merge)")
    ap.add_argument("--merge", default=None, help="comma-separated result files to merge into --out, then exit")
    ap.add_argument("--ks", default="0,1,4,8,16")
    ap.add_argument("--pools", default="8,64", help="examples per class; 64 only on the sentiment tasks")
    ap.add_argument("--order-k", type=int, default=8)
    ap.add_argument("--orders", type=int, default=5)
    ap.add_argument("--max-test", type=int, default=100)
    ap.add_argument("--max-test-many", type=int, default=40, help="test rows for tasks with more than 20 classes")
    ap.add_argument("--seeds-many", type=int, default=None, help="seeds for tasks with more than 20 classes "
                    "(default: --seeds)")
    ap.add_argument("--max-chars", type=int, default=600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", default="benchmarks/lm/prompting.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.backbones import get_embedder
    from anytask.data.sources import list_tasks
    from anytask.methods.heads import create_head_for
    from anytask.methods.lm import LMPromptHead

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    if args.merge:  # one file from the parts of a split run: every row, every command
        parts = [json.loads(Path(f).read_text()) for f in args.merge.split(",")]
        rows, seen = [], set()
        for row in (row for p in parts for row in p["rows"]):  # a row two parts both ran is kept once (the first)
            key = (row["task"], row["pool"], row["seed"], row["method"], row.get("k"), row.get("order"))
            if key not in seen:
                seen.add(key)
                rows.append(row)
        merged = {**parts[0], "command": "\n".join(p["command"] for p in parts), "parts": [p["args"] for p in parts],
                  "rows": rows}
        write_file_atomic(out, (json.dumps(merged, indent=1) + "\n").encode())
        return
    tasks = args.tasks.split(",") if args.tasks else list_tasks(args.data_root)
    result = {"command": "python " + " ".join(["benchmarks/lm/prompting.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "torch_threads": torch.get_num_threads(), "rows": []}
    if args.resume and out.is_file():
        result["rows"] = json.loads(out.read_text())["rows"]
    done = {(r["task"], r["pool"], r["seed"], r["method"], r.get("k"), r.get("order")) for r in result["rows"]}
    minilm, lm_states = get_embedder("minilm"), get_embedder("smollm2")

    def save():
        write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())

    def emit(row):
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        save()

    ks = [int(v) for v in args.ks.split(",")]
    seeds = [int(v) for v in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    jobs = [(seed, pool, name) for seed in seeds for pool in map(int, args.pools.split(","))
            for name in tasks if pool <= 8 or name in SENTIMENT]
    data = {}
    for seed, pool, name in jobs:
        if name not in data:
            train, test = load_dataset(name, data_root=args.data_root)
            n_classes = len(set(map(str, train.y)))
            test = test.subset(eval_indices(name, len(test), args.max_test_many if n_classes > 20 else args.max_test))
            data[name] = (train, [cut(t, args.max_chars) for t in test.X], np.asarray(test.y), n_classes)
        train, test_X, test_y, n_classes = data[name]
        if n_classes > 20 and args.seeds_many is not None and seed >= args.seeds_many:
            continue
        idx = k_shot_indices(train.y, pool, task_seed(name, pool, seed))
        texts, y = [train.X[i] for i in idx], np.asarray(train.y)[idx].astype(str)
        base = {"task": name, "pool": pool, "seed": seed, "n_train": len(y), "n_test": len(test_y)}
        params = dict(backbone="smollm2", template=TEMPLATES.get(name, "Text: {text}\nLabel:"),
                      verbalizers=verbalizers(name, sorted(set(y))), seed=seed)
        for k in (ks if pool <= 8 else [max(ks)]):
            if (name, pool, seed, "lm_prompt", k, None) in done:
                continue
            start = time.perf_counter()
            fitted = "fitted" if len(set(y)) <= 20 else "contextual"  # 77 classes: too slow to score the pool
            head = LMPromptHead(k=k, calibration=fitted, **params).fit(texts, y)
            acc, flips = prompt_rows(head, test_X, test_y)
            emit({**base, "method": "lm_prompt", "k": k, "order": None, "accuracy": acc, **flips,
                  "seconds": round(time.perf_counter() - start, 2)})
        if pool <= 8 and seed == 0 and len(set(y)) <= 20:  # orders: not on banking77 (77 multi-token answers)
            for order in range(args.orders):
                if (name, pool, seed, "lm_prompt", args.order_k, order) in done:
                    continue
                start = time.perf_counter()
                head = LMPromptHead(k=args.order_k, order=order, **params).fit(texts, y)
                acc, flips = prompt_rows(head, test_X, test_y)
                emit({**base, "method": "lm_prompt", "k": args.order_k, "order": order, "accuracy": acc, **flips,
                      "seconds": round(time.perf_counter() - start, 2)})
        for method, embedder, head_name in (("probe_minilm", minilm, "linear_probe"),
                                            ("probe_smollm2", lm_states, "linear_probe"),
                                            ("icl_smollm2", lm_states, "icl")):
            if (name, pool, seed, method, None, None) in done:
                continue
            start = time.perf_counter()
            backbone = "minilm" if embedder is minilm else "smollm2"
            head = create_head_for(head_name, backbone, None).fit(embedder.embed(texts), y)
            proba = head.predict_proba(embedder.embed(test_X))
            emit({**base, "method": method, "k": None, "order": None,
                  "accuracy": accuracy(proba, head.classes_, test_y), "seconds": round(time.perf_counter() - start, 2)})
    save()


if __name__ == "__main__":
    main()
