"""UniQA's prompt-anchored scorer on text (card 02): zero-shot anchors, learned levels only, adapter + levels with
1 and 3 cue groups, against ridge regression and a linear probe on the same frozen MiniLM embeddings:

    python benchmarks/scores/uniqa.py --out benchmarks/scores/uniqa.json

Tasks: imdb's 1-10 `rating` (5,000 train / 1,999 test reviews) and financial_phrasebank read as ordinal
(negative < neutral < positive). Label budgets 10, 50, 200 (5 seeds: a random sample of the training rows) and
the full training set (3 seeds). SRCC and PLCC on the whole test split. The adapter runs with the card's
settings (Adam 2e-4, cosine, 20 epochs, batch 8); `adapter_3g_cv` picks its learning rate among 2e-4, 1e-3 and
5e-3 by 5-fold cross-validated SRCC inside the labelled rows (budgets up to 200 only). Ridge's penalty is chosen
by leave-one-out CV on the labelled rows; the linear probe is logistic regression over the distinct targets
(C = 1), scored by its expected target. The anchors are the only task input a zero-shot user writes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

TASKS = {
    "imdb": {"label_column": "rating", "order": None, "groups": [
        ["a terrible movie review", "a bad movie review", "a mediocre movie review", "a good movie review",
         "an excellent movie review"],
        ["I hated this film", "I disliked this film", "I was indifferent to this film", "I liked this film",
         "I loved this film"],
        ["zero out of ten", "two out of ten", "five out of ten", "seven out of ten", "ten out of ten"]]},
    "financial_phrasebank": {"label_column": "label", "order": ["negative", "neutral", "positive"], "groups": [
        ["bad news for the company", "neutral news about the company", "good news for the company"],
        ["the results got worse", "the results stayed the same", "the results improved"],
        ["a negative financial statement", "a neutral financial statement", "a positive financial statement"]]},
}
LRS = (2e-4, 1e-3, 5e-3)


def linear_probe(Xtr, ytr, Xte):
    from sklearn.linear_model import LogisticRegression

    values = np.unique(ytr)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(Xtr, np.searchsorted(values, ytr))
    return clf.predict_proba(Xte) @ values


def cv_lr(make, X, y, seed: int) -> float:
    from sklearn.model_selection import KFold

    from anytask.methods.scores import spearman

    best, best_lr = -2.0, LRS[0]
    for lr in LRS:
        preds = np.zeros(len(y))
        for tr, va in KFold(5, shuffle=True, random_state=seed).split(X):
            if np.ptp(y[tr]) == 0:
                preds[va] = y[tr][0]
                continue
            preds[va] = make(lr=lr).fit(X[tr], y[tr]).predict(X[va])
        s = spearman(y, preds)
        if s > best:
            best, best_lr = s, lr
    return best_lr


def plot(result: dict, path: Path) -> None:
    """SRCC against the label budget, one panel per task: the anchored scorer's variants against the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, sizes = result["summary"], [z for z in result["sizes"] if z != "0"]
    fig, axes = plt.subplots(1, len(result["tasks"]), figsize=(5.5 * len(result["tasks"]), 4), squeeze=False)
    for ax, task in zip(axes[0], result["tasks"]):
        for m in result["methods"]:
            pts = [(i, s.get(f"{task}|{z}|{m}") or s.get(f"{task}|0|{m}")) for i, z in enumerate(sizes)]
            pts = [(i, e) for i, e in pts if e is not None]
            style = "--" if m.startswith("zero_shot") else "-"
            ax.errorbar([i for i, _ in pts], [e["srcc"] for _, e in pts], yerr=[e["srcc_sd"] for _, e in pts],
                        label=m, linestyle=style, marker="o", capsize=2)
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_xlabel("labelled rows")
        ax.set_ylabel("SRCC (test)")
        ax.set_title(task)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def merge(runs: list[dict], out: Path) -> None:
    """One result from runs over disjoint tasks: rows and summaries joined, each run's command kept."""
    result = dict(runs[0])
    result["tasks"] = [t for r in runs for t in r["tasks"]]
    result["anchors"] = {k: v for r in runs for k, v in r["anchors"].items()}
    result["rows"] = [x for r in runs for x in r["rows"]]
    result["summary"] = {k: v for r in runs for k, v in r["summary"].items()}
    result["command"] = " & ".join(f"OMP_NUM_THREADS=1 {r['command']}" for r in runs) + " ; wait ; " + " ".join(
        ["python"] + sys.argv)
    result["wall_seconds"] = max(r["wall_seconds"] for r in runs)
    out.write_text(json.dumps(result, indent=1))
    plot(result, out.with_suffix(".png"))
    print(f"merged {len(runs)} runs into {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,200,full")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--full-seeds", type=int, default=3)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[3] / "shared" / "data" / "text"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "uniqa.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="combine runs of different tasks (run in parallel, "
                    "one --tasks each) into --out")
    args = ap.parse_args()
    if args.plot_only:
        return plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    if args.merge:
        return merge([json.loads(Path(p).read_text()) for p in args.merge], Path(args.out))
    import torch

    from anytask.backbones import get_embedder
    from anytask.data.sources import load_task
    from anytask.methods.scores import check_targets, create_scorer, pearson, spearman

    torch.set_num_threads(max(1, torch.get_num_threads()))
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    embedder = get_embedder("minilm")
    rows = []
    for task in args.tasks.split(","):
        spec = TASKS[task]
        train, test = load_task(args.data_root, task, label_column=spec["label_column"])
        Xtr, Xte = embedder.embed(list(train.X)), embedder.embed(list(test.X))
        ytr = check_targets(train.y, len(Xtr), spec["order"])
        yte = check_targets(test.y, len(Xte), spec["order"])
        G = spec["groups"]

        def record(size, seed, method, pred, fit_s, **extra):
            rows.append({"task": task, "size": size, "seed": seed, "method": method, "srcc": spearman(yte, pred),
                         "plcc": pearson(yte, pred), "fit_seconds": round(fit_s, 3), **extra})

        for groups, name in ((G[:1], "zero_shot_1g"), (G, "zero_shot_3g")):
            t = time.perf_counter()
            z = create_scorer("anchored", groups=groups, train="none").fit()
            record("0", 0, name, z.predict(Xte), time.perf_counter() - t)
        for size in args.sizes.split(","):
            seeds = args.full_seeds if size == "full" else args.seeds
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                idx = np.arange(len(ytr)) if size == "full" else rng.choice(len(ytr), int(size), replace=False)
                while np.ptp(ytr[idx]) == 0:  # a budget needs two different targets
                    idx = rng.choice(len(ytr), int(size), replace=False)
                X, y = Xtr[idx], ytr[idx]
                configs = [("scales_3g", dict(groups=G, train="scales")), ("adapter_1g", dict(groups=G[:1])),
                           ("adapter_3g", dict(groups=G))]
                for method, params in configs:
                    t = time.perf_counter()
                    m = create_scorer("anchored", seed=seed, **params).fit(X, y)
                    levels = m.levels_.tolist()
                    record(size, seed, method, m.predict(Xte), time.perf_counter() - t,
                           levels=[round(v, 4) for v in levels], monotone=bool(np.all(np.diff(levels) > 0)))
                if size != "full":
                    t = time.perf_counter()
                    lr = cv_lr(lambda lr: create_scorer("anchored", groups=G, lr=lr, seed=seed), X, y, seed)
                    m = create_scorer("anchored", groups=G, lr=lr, seed=seed).fit(X, y)
                    record(size, seed, "adapter_3g_cv", m.predict(Xte), time.perf_counter() - t, lr=lr)
                t = time.perf_counter()
                r = create_scorer("ridge").fit(X, y)
                record(size, seed, "ridge", r.predict(Xte), time.perf_counter() - t, alpha=r.alpha_)
                t = time.perf_counter()
                record(size, seed, "linear_probe", linear_probe(X, y, Xte), time.perf_counter() - t)
                last = [r for r in rows if r["task"] == task and r["size"] == size and r["seed"] == seed]
                print(f"{task} n={size} seed {seed}: " + ", ".join(f"{r['method']} {r['srcc']:.3f}" for r in last),
                      flush=True)
    summary = {}
    for r in rows:
        summary.setdefault(f"{r['task']}|{r['size']}|{r['method']}", []).append(r)
    summary = {k: {"srcc": float(np.mean([r["srcc"] for r in v])),
                   "srcc_sd": float(np.std([r["srcc"] for r in v], ddof=1)) if len(v) > 1 else 0.0,
                   "plcc": float(np.mean([r["plcc"] for r in v])),
                   "plcc_sd": float(np.std([r["plcc"] for r in v], ddof=1)) if len(v) > 1 else 0.0,
                   "seeds": len(v), "fit_seconds": float(np.mean([r["fit_seconds"] for r in v]))}
               for k, v in summary.items()}
    result = {"benchmark": "uniqa-text", "command": " ".join(["python"] + sys.argv), "tasks": args.tasks.split(","),
              "sizes": ["0"] + args.sizes.split(","), "anchors": {t: TASKS[t]["groups"] for t in args.tasks.split(",")},
              "methods": ["zero_shot_1g", "zero_shot_3g", "scales_3g", "adapter_1g", "adapter_3g", "adapter_3g_cv",
                          "ridge", "linear_probe"],
              "settings": {"lr": 2e-4, "epochs": 20, "batch_size": 8, "logit_scale": 100.0, "cv_lrs": list(LRS)},
              "rows": rows, "summary": summary, "wall_seconds": round(time.perf_counter() - start, 1),
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "threads": torch.get_num_threads()},
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot(result, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out} in {result['wall_seconds']} s")


if __name__ == "__main__":
    main()
