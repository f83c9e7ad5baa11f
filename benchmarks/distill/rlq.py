"""RLQ's claim, text analogue: does distilling degraded texts onto the frozen teacher's clean embeddings make
few-shot heads trained on clean examples more accurate on noisy queries, without costing clean accuracy?

    python benchmarks/distill/rlq.py --out benchmarks/distill/rlq.json

Training (task-agnostic): the train texts of the 11 shared tasks, unlabelled (20,000, seed 0); a copy of
MiniLM-L6 is trained ``--steps`` steps with the library defaults (mixed degradations at rate 0.1, lr 2e-5,
clean-consistency weight 1; not tuned). Evaluation: on each task, ``linear_probe`` is trained on 16 clean
examples per class (seeds 0-2) and scored on the first 500 test rows, clean and degraded two ways (typo,
chars; rate 0.1, seeded apart from training; casing noise is left out because MiniLM's tokenizer
lowercases), for the teacher (the baseline) and the robust copy, in the same run. Also: the mean cosine
distance between a test text's clean and degraded embeddings.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["ag_news", "banking77", "dbpedia", "financial_phrasebank", "imdb", "rotten_tomatoes", "sms_spam", "sst2",
         "subj", "trec", "youtube"]
KINDS = ["typo", "chars"]  # not "case": MiniLM's tokenizer lowercases, so casing noise cannot reach it
STUDENT = ROOT / "benchmarks" / "distill" / "students" / "rlq-mixed"


def evaluate(backbone_name: str, data_root: str, rate: float, shots: int = 16, seeds=(0, 1, 2)) -> dict:
    from anytask.backbones import get_embedder
    from anytask.data import eval_indices, k_shot_indices, load_dataset, task_seed
    from anytask.data.noise import degrade
    from anytask.methods.heads import HEADS

    embedder = get_embedder(backbone_name)
    out = {"accuracy": {}, "cosine_distance": {}}
    for t_i, name in enumerate(TASKS):
        train, test = load_dataset(name, data_root=data_root)
        test = test.subset(eval_indices(name, len(test), 500))
        clean = list(test.X)
        views = {"clean": clean}
        for k_i, kind in enumerate(KINDS):
            views[kind] = degrade(clean, kind, rate, seed=10_000 + 100 * t_i + k_i)
        X = {v: embedder.embed(texts) for v, texts in views.items()}
        for kind in KINDS:
            out["cosine_distance"][f"{name}|{kind}"] = float(1 - np.mean(np.sum(X["clean"] * X[kind], axis=1)))
        for seed in seeds:
            idx = k_shot_indices(train.y, shots, task_seed(name, shots, seed))
            head = HEADS.get("linear_probe")().fit(embedder.embed([train.X[i] for i in idx]), train.y[idx])
            for v in views:
                out["accuracy"][f"{name}|{v}|{seed}"] = float(np.mean(head.predict(X[v]) == test.y))
        print(f"{backbone_name} {name}: " + ", ".join(
            f"{v} {np.mean([out['accuracy'][f'{name}|{v}|{s}'] for s in seeds]):.3f}" for v in views), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "text"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rate", type=float, default=0.1, help="degradation rate at evaluation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import torch

    from anytask.methods.distill import DISTILLERS, corpus_texts

    torch.set_num_threads(args.threads)
    texts = corpus_texts(TASKS, data_root=args.data_root, limit=20000, seed=0)
    start = time.perf_counter()
    rlq = DISTILLERS.get("rlq")(steps=args.steps).fit(texts)
    fit_s = time.perf_counter() - start
    rlq.save_student(STUDENT)
    rows = {"MiniLM-L6 (teacher)": evaluate("minilm", args.data_root, args.rate),
            "RLQ robust copy": evaluate(f"hf:{STUDENT}", args.data_root, args.rate)}
    result = {"command": "python " + " ".join(["benchmarks/distill/rlq.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "params": rlq.get_params(), "fit_seconds": fit_s, "tasks": TASKS, "kinds": KINDS,
              "shots": 16, "seeds": [0, 1, 2], "rows": rows,
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "torch": torch.__version__, "torch_threads": args.threads,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
