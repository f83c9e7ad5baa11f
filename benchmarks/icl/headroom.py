"""How much room is there above logistic regression for a learner that only sees the examples?

    python benchmarks/icl/headroom.py --data-root ../shared/data [--seeds 3] [--out benchmarks/icl/headroom.json]

Before pre-training anything: simple variants of the baseline on the same frozen MiniLM
features and the same k-shot draws as `anytask bench` (11 tasks, 2..64 per class): the L2
penalty C, nearest centroid, logistic regression after whitening with the covariance of an
unrelated text pool (CISI + ESCO, as the icl priors use), and self-training on the unlabelled
test queries (a transductive learner). Mean accuracy over tasks.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from anytask.backbones import get_embedder
from anytask.experiments.tasks import prepare_tasks
from anytask.methods.icl.train import pool_texts

TASKS = "sst2,rotten_tomatoes,sms_spam,youtube,imdb,ag_news,dbpedia,subj,trec,financial_phrasebank,banking77"
SHOTS = (2, 4, 8, 16, 32, 64)


def lr(C):
    return lambda X, y, Q: LogisticRegression(C=C, max_iter=500).fit(X, y).predict(Q)


def centroid(X, y, Q):
    classes = np.unique(y)
    M = np.stack([X[y == c].mean(0) for c in classes])
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    return classes[(Q @ M.T).argmax(1)]


def whitened(pool: np.ndarray, shrink: float):
    mu, ev, V = pool.mean(0), *np.linalg.eigh(np.cov(pool.T))
    W = V @ np.diag((ev + shrink * ev.mean()) ** -0.5) @ V.T * np.sqrt(ev.mean())
    return lambda X, y, Q: LogisticRegression(max_iter=1000).fit((X - mu) @ W, y).predict((Q - mu) @ W)


def self_training(X, y, Q, rounds=3):
    model = LogisticRegression(max_iter=500).fit(X, y)
    for _ in range(rounds):
        p = model.predict_proba(Q)
        keep = p.max(1) >= np.quantile(p.max(1), 0.5)  # the more confident half, weight 0.5
        model = LogisticRegression(max_iter=500).fit(
            np.vstack([X, Q[keep]]), np.concatenate([y, model.classes_[p.argmax(1)][keep]]),
            sample_weight=np.concatenate([np.ones(len(y)), np.full(keep.sum(), 0.5)]))
    return model.predict(Q)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/icl/headroom.json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    embedder = get_embedder("minilm")
    tasks, _ = prepare_tasks(TASKS.split(","), data_root=Path(args.data_root) / "text", shots=SHOTS,
                             seeds=range(args.seeds), embedder=embedder)
    pool = embedder.embed(pool_texts(Path(args.data_root))).astype(np.float64)
    methods = {"linear_probe C=1 (baseline)": lr(1.0), "C=10": lr(10.0), "C=100": lr(100.0),
               "nearest centroid": centroid, "whitened by an unrelated pool (shrink 0.1)": whitened(pool, 0.1),
               "whitened (shrink 1)": whitened(pool, 1.0), "self-training on the test queries": self_training}
    acc = {m: {k: [] for k in SHOTS} for m in methods}
    for task in tasks:
        for k in SHOTS:
            for seed in range(args.seeds):
                idx = task.shot_indices(k, seed)
                for name, f in methods.items():
                    pred = f(task.X_train[idx], task.y_train[idx], task.X_test)
                    acc[name][k].append(float(np.mean(pred == task.y_test)))
    summary = {m: {k: round(float(np.mean(v)), 4) for k, v in by_k.items()} for m, by_k in acc.items()}
    with open(args.out, "w") as f:
        json.dump({"command": "python benchmarks/icl/headroom.py --data-root ../shared/data",
                   "seeds": args.seeds, "shots": SHOTS, "mean_accuracy": summary}, f, indent=1)
    print("| learner | " + " | ".join(f"k={k}" for k in SHOTS) + " |")
    for name, by_k in summary.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in by_k.values()) + " |")


if __name__ == "__main__":
    main()
