"""Uni-Perceiver v1 on text (card 19): multi-task training, zero-shot label spaces, prompt tuning on 1 %.

    python benchmarks/retrieval/uni_perceiver.py --out benchmarks/retrieval/uni_perceiver.json

Protocol, fixed before the run (the card's small-scale plan; nothing is chosen on test data). Per seed:

* **multi-task training**: MiniLM's top 2 layers tuned as one encoder for inputs and targets on ag_news and
  dbpedia (``--train`` examples each, against their label names) and CISI (query -> document pairs of half the
  judged queries), one task per step drawn uniformly, 600 steps of 32, lr 1e-4, temperatures from 0.07;
* **seen tasks**: accuracy on ``--test`` test examples of ag_news and dbpedia, MAP of the other half of CISI's
  queries over all 1,460 documents — frozen MiniLM (the same cosine scoring) vs the multi-task encoder;
* **zero-shot**: trec (6 coarse classes, named) and banking77 (77 intents) by their label names, never trained;
* **1 % of banking77** (100 training examples drawn by the seed, about 1.3 per intent): logistic regression on
  frozen MiniLM embeddings (the house baseline) and on the multi-task encoder's; deep key/value prompt tuning of
  the frozen multi-task encoder (10 prompts at each of the 6 layers, separate input and label prompts,
  ``PromptTuning(prompt_mode="kv")``, 500 steps — the card's CPU deviation —, the project's default lr 2e-3);
  the same prompts on frozen MiniLM; and full fine-tuning of the multi-task encoder (all 6 layers, 500 steps of
  32 against the 77 label names, lr 5e-5). Accuracy on ``--test`` banking77 test examples.

The card's deviations: no LayerNorm tuning and no zero-initialised fc head in prompt tuning (the project's prompt
head scores label texts by cosine only); 500 steps instead of 2,500.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROWS = ("frozen MiniLM", "multi-task encoder")


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(HERE))
    from generalist import load_tasks

    from anytask.backbones import get_backbone
    from anytask.methods.heads import create_head
    from anytask.methods.retrieval.metrics import evaluate as rank_metrics
    from anytask.methods.retrieval.uni_perceiver import UniPerceiver

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"uni-perceiver-{spec['seed']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    seed, t0 = spec["seed"], time.perf_counter()
    train, test = load_tasks(Path(spec["text_root"]), Path(spec["cisi"]), spec["train"], spec["test"],
                             classify=("ag_news", "dbpedia", "trec", "banking77"), seed=seed)
    tasks = {n: train[n] for n in ("ag_news", "dbpedia", "cisi")}
    multi = UniPerceiver(n_top=2, steps=spec["steps"], batch_size=32, lr=1e-4, seed=seed).fit_tasks(tasks)
    frozen = UniPerceiver(steps=0).fit_tasks(tasks)  # the backbone itself under the same scoring
    res = {"seed": seed, "multi_fit_s": multi.fit_seconds_, "seen": {}, "zero_shot": {}, "one_percent": {},
           "tau": {n: float(multi._tau(n).detach()) for n in tasks}}

    def accuracy(model, name, labels=None):
        texts, y = test[name]
        names = train[name]["label_names"] or {}
        classes = sorted(set(train[name]["labels"]) | set(y))
        cand = [str(names.get(c, c.replace("_", " "))) for c in classes]
        pred = model.predict(None, texts, labels=cand)
        back = dict(zip(cand, classes))
        return float(np.mean([back[p] == t for p, t in zip(pred, y)]))

    for row, model in zip(ROWS, (frozen, multi)):
        queries, docs, relevant = test["cisi"]
        S = model.set_targets(docs).score(queries)
        order = np.argsort(-S, axis=1, kind="stable")
        cisi = rank_metrics({i: order[i].tolist() for i in range(len(queries))}, dict(enumerate(relevant)), ["map"])
        res["seen"][row] = {"ag_news": accuracy(model, "ag_news"), "dbpedia": accuracy(model, "dbpedia"),
                            "cisi_map": float(cisi["map"])}
        res["zero_shot"][row] = {"trec": accuracy(model, "trec"), "banking77": accuracy(model, "banking77")}
        print(json.dumps({"seed": seed, "row": row, **res["seen"][row], **res["zero_shot"][row]}), flush=True)

    # 1 % of banking77
    rows = [json.loads(line) for line in (Path(spec["text_root"]) / "banking77" / "train.jsonl").read_text()
            .splitlines() if line.strip()]
    pick = np.random.default_rng(1000 + seed).choice(len(rows), size=len(rows) // 100, replace=False)
    few_x, few_y = [rows[i]["text"] for i in pick], [rows[i]["label"] for i in pick]
    test_x, test_y = test["banking77"]
    one = res["one_percent"]
    minilm = get_backbone("minilm")
    for name, embed in (("logistic regression, frozen MiniLM", lambda t: minilm.embed(t).numpy()),
                        ("logistic regression, multi-task encoder", multi.embed)):
        t = time.perf_counter()
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(embed(few_x), few_y)
        one[name] = {"accuracy": float(np.mean(clf.predict(embed(test_x)) == np.array(test_y))),
                     "fit_s": round(time.perf_counter() - t, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = multi.export(Path(tmp) / "multi")
        descriptions = {c: c.replace("_", " ") for c in set(few_y) | set(test_y)}
        for name, backbone in (("kv prompt tuning, frozen MiniLM", "minilm"),
                               ("kv prompt tuning, multi-task encoder", f"hf:{folder}")):
            t = time.perf_counter()
            head = create_head("prompt_tuning", backbone=backbone, prompt_mode="kv", length=10, depth=6,
                               descriptions=descriptions, templates=("{}",), epochs=5, batch_size=8,
                               max_steps=spec["pt_steps"], seed=seed).fit(few_x, few_y)
            head = head.with_labels(sorted(descriptions))  # score every intent, including ones absent from the 1 %
            one[name] = {"accuracy": float(np.mean(head.predict(test_x) == np.array(test_y, dtype=object))),
                         "fit_s": round(time.perf_counter() - t, 1)}
            print(json.dumps({"seed": seed, "row": name, **one[name]}), flush=True)
        t = time.perf_counter()
        ft = UniPerceiver(backbone=f"hf:{folder}", n_top=6, steps=spec["ft_steps"], batch_size=32, lr=5e-5,
                          seed=seed).fit_tasks({"banking77": {"texts": few_x, "labels": few_y}})
        pred = ft.predict(None, test_x, labels=sorted(descriptions.values()))
        back = {v: k for k, v in descriptions.items()}
        one["full fine-tuning, multi-task encoder"] = {
            "accuracy": float(np.mean([back[p] == y for p, y in zip(pred, test_y)])),
            "fit_s": round(time.perf_counter() - t, 1)}
    one["zero-shot, multi-task encoder"] = {"accuracy": res["zero_shot"]["multi-task encoder"]["banking77"]}
    one["zero-shot, frozen MiniLM"] = {"accuracy": res["zero_shot"]["frozen MiniLM"]["banking77"]}
    res["one_percent_n"] = len(few_x)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({"seed": seed, "one_percent": one}), flush=True)
    res = json.loads(json.dumps(res))
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict]) -> dict:
    def ms(xs):
        return [float(np.mean(xs)), float(np.std(xs))]

    out = {"seen": {}, "zero_shot": {}, "one_percent": {}}
    for part in ("seen", "zero_shot"):
        for row in ROWS:
            out[part][row] = {k: ms([j[part][row][k] for j in jobs]) for k in jobs[0][part][row]}
    for name in jobs[0]["one_percent"]:
        out["one_percent"][name] = {k: ms([j["one_percent"][name][k] for j in jobs])
                                    for k in jobs[0]["one_percent"][name]}
    out["tau"] = {n: ms([j["tau"][n] for j in jobs]) for n in jobs[0]["tau"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train", type=int, default=2000, help="training examples per classification task")
    ap.add_argument("--test", type=int, default=1000, help="test examples per classification task")
    ap.add_argument("--steps", type=int, default=600, help="multi-task training steps")
    ap.add_argument("--pt-steps", type=int, default=500)
    ap.add_argument("--ft-steps", type=int, default=500)
    ap.add_argument("--text-root", default="../shared/data/text")
    ap.add_argument("--cisi", default="../shared/data/retrieval/cisi")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-uni-perceiver-bench")
    ap.add_argument("--out", default=str(HERE / "uni_perceiver.json"))
    args = ap.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"seed": s, "train": args.train, "test": args.test, "steps": args.steps, "pt_steps": args.pt_steps,
              "ft_steps": args.ft_steps, "text_root": args.text_root, "cisi": args.cisi, "work": args.work}
             for s in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "uni_perceiver",
              "command": " ".join(["python", "benchmarks/retrieval/uni_perceiver.py", *sys.argv[1:]]),
              "seeds": args.seeds, "args": {k: v for k, v in vars(args).items() if k not in ("work", "out")},
              "summary": summarise(jobs), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
