"""Lasso A-MTRL, neural version on frozen MiniLM (card 25 b): which source tasks to spend samples on for a
data-poor target.

    python benchmarks/multitask/amtrl_text.py --out benchmarks/multitask/amtrl_text.json

Sources: every one-vs-one pair of classes of 9 shared tasks (dbpedia, ag_news, trec, sst2, imdb, subj, sms_spam,
youtube, financial_phrasebank; at most 1,500 training rows per task, seeded), over their sentence embeddings:
about 140 binary sources, most about topics, a few about sentiment. Targets, never among the sources:
rotten_tomatoes (sentiment: only a handful of sources are relevant, the sparse case the paper is about) and the
ag_news pair Business vs Sci/Tech (its hardest), each with 20 labelled examples, scored on its test rows. A shared
trunk (384 -> 64, ReLU) with one logistic head per source is trained on what each rule has drawn
(``fit_trunk``); the target head is logistic regression on the trunk's features; nu is estimated from the heads
(LASSO for nu1, alpha fixed before the run; the pseudo-inverse for nu2). Epoch 1 draws 20 per source uniformly,
then +1,400 and +2,800 by the rule. Seeds 0-2. The target's own logistic regression on the raw embeddings is the
no-transfer reference.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["dbpedia", "ag_news", "trec", "sst2", "imdb", "subj", "sms_spam", "youtube", "financial_phrasebank"]
TARGETS = {"rotten_tomatoes": None, "ag_news": ("Business", "Sci/Tech")}   # a whole task, or a held-out pair
MAX_ROWS = 1500


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "text"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budgets", default="2800,1400,2800")
    ap.add_argument("--n-target", type=int, default=20)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "amtrl_text.json"))
    args = ap.parse_args()
    import torch
    from sklearn.linear_model import LogisticRegression

    from anytask.backbones import get_embedder
    from anytask.data import load_dataset
    from anytask.methods.multitask.amtrl import ALLOCATIONS, allocate, fit_trunk, relevance

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    emb = get_embedder("minilm")
    pools, sources, targets = {}, [], []
    for name in dict.fromkeys(SOURCES + list(TARGETS)):
        train, test = load_dataset(name, data_root=args.data_root)
        keep = np.sort(np.random.default_rng(0).permutation(len(train.y))[:MAX_ROWS])
        X_train, y_train = emb.embed([train.X[i] for i in keep]), train.y[keep]
        classes = sorted(set(y_train.tolist()))
        held = TARGETS.get(name, "no") if name in TARGETS else "no"
        if held is None:  # the whole task is the target
            y = (y_train == classes[1]).astype(int)
            targets.append({"name": name, "X": X_train, "y": y, "Xt": emb.embed(list(test.X)),
                            "yt": (test.y == classes[1]).astype(int)})
            continue
        for a, b in itertools.combinations(classes, 2):
            rows = np.flatnonzero(np.isin(y_train, [a, b]))
            y = (y_train[rows] == b).astype(int)
            if held != "no" and {a, b} == set(held):
                trows = np.flatnonzero(np.isin(test.y, [a, b]))
                targets.append({"name": f"{name}:{a}-vs-{b}", "X": X_train[rows], "y": y,
                                "Xt": emb.embed([test.X[i] for i in trows]), "yt": (test.y[trows] == b).astype(int)})
            elif min(np.bincount(y, minlength=2)) >= 5:
                sources.append(f"{name}:{a}-vs-{b}")
                pools[len(sources) - 1] = (X_train[rows], y)
    M = len(sources)
    print(f"{M} sources, {len(targets)} targets; embedded in {time.perf_counter() - start:.0f}s", flush=True)
    budgets = [int(b) for b in args.budgets.split(",")]
    rows = []
    for seed in range(args.seeds):
        for target in targets:
            rng0 = np.random.default_rng(seed)
            pick = np.concatenate([rng0.choice(np.flatnonzero(target["y"] == c), args.n_target // 2, replace=False)
                                   for c in (0, 1)])
            X0, y0 = target["X"][pick], target["y"][pick]
            for rule in ["uniform", "nu2", "nu1"]:
                rng = np.random.default_rng(1000 + seed)
                order = {m: rng.permutation(len(pools[m][1])) for m in range(M)}
                taken = np.zeros(M, int)
                nu, total = None, 0
                for epoch, N in enumerate(budgets):
                    weights = np.ones(M) if epoch == 0 or rule == "uniform" else ALLOCATIONS.get(rule)(nu)
                    counts = allocate(weights, N)
                    taken = np.minimum(taken + counts, [len(pools[m][1]) for m in range(M)])
                    total += N
                    data = [(pools[m][0][order[m][:taken[m]]], pools[m][1][order[m][:taken[m]]]) for m in range(M)]
                    feats, W = fit_trunk(data, seed=seed)
                    head = LogisticRegression(C=1.0, max_iter=2000).fit(feats(X0), y0)
                    w0 = head.coef_.ravel()
                    acc = float(np.mean(head.predict(feats(target["Xt"])) == target["yt"]))
                    seen = taken > 0
                    nu = np.zeros(M)
                    nu[seen] = relevance(W[:, seen], w0, "l1" if rule == "nu1" else "l2",
                                         alpha=args.alpha if rule == "nu1" else None)
                    top = [sources[m] for m in np.argsort(-np.abs(nu))[:5]]
                    rows.append({"seed": seed, "target": target["name"], "rule": rule, "epoch": epoch,
                                 "total": total, "accuracy": acc, "sources_nonzero": int((np.abs(nu) > 1e-8).sum()),
                                 "top_sources": top})
                print(f"seed {seed} {target['name']} {rule}: " + " ".join(
                    f"{r['accuracy']:.3f}" for r in rows[-len(budgets):]), flush=True)
    # raw LR on the target's own 20 examples, the no-transfer reference
    ref = {}
    for seed in range(args.seeds):
        for target in targets:
            rng0 = np.random.default_rng(seed)
            pick = np.concatenate([rng0.choice(np.flatnonzero(target["y"] == c), args.n_target // 2, replace=False)
                                   for c in (0, 1)])
            lr = LogisticRegression(C=1.0, max_iter=2000).fit(target["X"][pick], target["y"][pick])
            ref.setdefault(target["name"], []).append(float(np.mean(lr.predict(target["Xt"]) == target["yt"])))
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['rule']}|{r['total']}", []).append(r["accuracy"])
    summary = {k: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))} for k, v in summary.items()}
    summary["target_only_lr"] = {"mean": float(np.mean([v for vs in ref.values() for v in vs]))}
    result = {"benchmark": "amtrl-text", "command": " ".join(["python"] + sys.argv), "sources": sources,
              "targets": [t["name"] for t in targets], "budgets": budgets, "n_target": args.n_target,
              "alpha": args.alpha, "seeds": list(range(args.seeds)), "rows": rows, "summary": summary,
              "wall_seconds": round(time.perf_counter() - start, 1),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for k, v in summary.items():
        print(k, v)


if __name__ == "__main__":
    main()
