"""One unsupervised graph encoder, frozen, reused for link prediction, node classification and graph
classification: GAE and VGAE (Kipf & Welling 2016) against IsoC-VGAE (card 09) and its ablations.

    python benchmarks/graphs/encoders.py --level node --out benchmarks/graphs/node.json
    python benchmarks/graphs/encoders.py --level graph --out benchmarks/graphs/graph.json

Node level (Cora, CiteSeer), per seed: an 85/5/10 edge split (PyG's RandomLinkSplit, seed = the seed); the
encoder trains on the training edges only; link prediction is scored on the held-out test edges and as many
non-edges (AUC, AP); the same frozen encoder then embeds the whole graph for node classification:
logistic regression on the Planetoid split (C chosen by 5-fold cross-validation on the 20-per-class training
nodes only), and few-shot (1 / 5 / 20 labelled nodes per class, drawn from the non-test labelled nodes) with
anytask's ``linear_probe`` and ``icl`` heads, unchanged, on the same embeddings.
Graph level (MUTAG, PROTEINS), per seed: the encoder trains on every graph without labels (the usual
unsupervised protocol); an SVM on the standardised sum-pooled embeddings is scored by 10-fold stratified CV,
its C chosen by an inner 3-fold CV on each training fold.

Every model uses its class's defaults (GAE / VGAE: the VGAE paper's; IsoC-VGAE: the card's) with 200 epochs;
``vgae_gin`` is VGAE on IsoC-VGAE's own encoder (GIN, 2 layers, 256 hidden, 64 latent, lr 0.001), so the
decoder is the only difference. Nothing is tuned on test edges, test nodes or test folds. Rows are appended to
``<out>.rows.jsonl`` as they finish (a rerun skips finished rows, and starts from the committed JSON's rows in a
fresh checkout); the JSON is written from them at the end.
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
GIN = {"conv": "gin", "head": "linear", "hidden": 256, "latent": 64, "layers": 2, "lr": 0.001}
CONFIGS = {
    "gae": ("gae", {}),
    "vgae": ("vgae", {}),
    "vgae_gin": ("vgae", GIN),
    "isoc_vgae": ("isoc_vgae", {}),
    "isoc: 1-hop decoder": ("isoc_vgae", {"multi_hop": False}),
    "isoc: no distribution": ("isoc_vgae", {"distribution_weight": 0.0}),
    "isoc: L=1": ("isoc_vgae", {"layers": 1}),
    "isoc: L=3": ("isoc_vgae", {"layers": 3}),
}
MAIN = ["gae", "vgae", "vgae_gin", "isoc_vgae"]
ABLATIONS = ["isoc: 1-hop decoder", "isoc: no distribution", "isoc: L=1", "isoc: L=3"]


def make(config: str, seed: int, epochs: int):
    from anytask.methods.graphs import ENCODERS

    name, kw = CONFIGS[config]
    return ENCODERS.get(name)(**kw, epochs=epochs, seed=seed)


def node_rows(dataset: str, config: str, seed: int, epochs: int, shots) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from anytask.data import k_shot_indices
    from anytask.data.graphs import link_split, load_graphs
    from anytask.methods.heads import HEADS

    g = load_graphs(dataset).graphs[0]
    train, _, test = link_split(g, seed=seed)
    start = time.perf_counter()
    enc = make(config, seed, epochs).fit(train)
    fit_s = time.perf_counter() - start
    pairs = np.concatenate([test.pos_edge_label_index.numpy(), test.neg_edge_label_index.numpy()], 1)
    truth = np.r_[np.ones(test.pos_edge_label_index.shape[1]), np.zeros(test.neg_edge_label_index.shape[1])]
    scores = enc.link_scores(train, pairs)
    start = time.perf_counter()
    X = enc.embed(g)
    embed_s = time.perf_counter() - start
    y = g.y.numpy()
    tr, te = g.train_mask.numpy(), g.test_mask.numpy()
    lr = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                      {"logisticregression__C": [0.01, 0.1, 1, 10]}, cv=5).fit(X[tr], y[tr])
    row = {"dataset": dataset, "config": config, "seed": seed, "epochs": epochs, "dim": int(X.shape[1]),
           "auc": float(roc_auc_score(truth, scores)), "ap": float(average_precision_score(truth, scores)),
           "node_acc": float(lr.score(X[te], y[te])), "node_C": lr.best_params_["logisticregression__C"],
           "fit_s": fit_s, "embed_s_per_1k": embed_s / len(X) * 1000, "final_loss": enc.history_[-1]}
    pool = np.flatnonzero(g.label_mask.numpy() & ~te)
    for k in shots:
        idx = pool[k_shot_indices(y[pool], k, 1000 * seed + k)]
        for head in ("linear_probe", "icl"):
            model = HEADS.get(head)().fit(X[idx], y[idx])
            row[f"{head}@{k}"] = float(np.mean(model.predict(X[te]) == y[te]))
    return row


def graph_rows(dataset: str, config: str, seed: int, epochs: int) -> dict:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from anytask.data.graphs import load_graphs

    gs = load_graphs(dataset)
    start = time.perf_counter()
    enc = make(config, seed, epochs).fit(gs)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    X = enc.embed(gs, level="graph")
    embed_s = time.perf_counter() - start
    y = gs.labels
    svm = GridSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.1, 1, 10, 100]},
                       cv=StratifiedKFold(3, shuffle=True, random_state=seed))
    accs = cross_val_score(svm, X, y, cv=StratifiedKFold(10, shuffle=True, random_state=seed))
    nodes = sum(g.num_nodes for g in gs.graphs)
    return {"dataset": dataset, "config": config, "seed": seed, "epochs": epochs, "dim": int(X.shape[1]),
            "graph_acc": float(accs.mean()), "graph_acc_folds": [float(a) for a in accs], "fit_s": fit_s,
            "embed_s_per_1k": embed_s / nodes * 1000, "final_loss": enc.history_[-1]}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    metrics = (["auc", "node_acc"] if result["level"] == "node" else ["graph_acc"])
    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(metrics) * len(datasets), figsize=(4.2 * len(metrics) * len(datasets), 3.6))
    axes = np.atleast_1d(axes)
    i = 0
    for metric in metrics:
        for ds in datasets:
            ax = axes[i]
            i += 1
            configs = [c for c in CONFIGS if any(r["config"] == c and r["dataset"] == ds for r in rows)]
            vals = [[r[metric] for r in rows if r["config"] == c and r["dataset"] == ds] for c in configs]
            ax.bar(range(len(configs)), [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], capsize=3,
                   color=["#999" if c in ("gae", "vgae", "vgae_gin") else "#3b7dd8" for c in configs])
            ax.set_xticks(range(len(configs)), configs, rotation=45, ha="right", fontsize=7)
            lo = min(np.mean(v) - np.std(v) for v in vals)
            ax.set_ylim(max(0, lo - 0.05), None)
            ax.set_title(f"{ds}: {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--level", choices=["node", "graph"], required=True)
    p.add_argument("--datasets", default=None, help="default: cora,citeseer (node) / mutag,proteins (graph)")
    p.add_argument("--configs", default=None, help="default: all on the first dataset, the main four on the rest")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--shots", default="1,5,20")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--write-only", action="store_true",
                   help="run nothing: write the JSON and plot from the rows already in <out>.rows.jsonl")
    p.add_argument("--command", action="append", default=[],
                   help="with --write-only: a command that produced the rows, recorded in the JSON (repeatable)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    datasets = (args.datasets or ("cora,citeseer" if args.level == "node" else "mutag,proteins")).split(",")
    out = Path(args.out)
    log = out.with_suffix(".rows.jsonl")
    if log.is_file():
        done = [json.loads(line) for line in log.read_text().splitlines()]
    else:  # a fresh checkout: the committed result file's rows are the finished ones
        done = json.loads(out.read_text())["rows"] if out.is_file() else []
        log.write_text("".join(json.dumps(r) + "\n" for r in done))
    key = lambda r: (r["dataset"], r["config"], r["seed"], r["epochs"])  # noqa: E731
    finished = {key(r) for r in done}
    shots = [int(k) for k in args.shots.split(",")]
    for i, ds in enumerate([] if args.write_only else datasets):
        configs = args.configs.split(",") if args.configs else (MAIN + ABLATIONS if i == 0 else MAIN)
        for seed in [int(s) for s in args.seeds.split(",")]:
            for config in configs:
                if (ds, config, seed, args.epochs) in finished:
                    continue
                row = (node_rows(ds, config, seed, args.epochs, shots) if args.level == "node"
                       else graph_rows(ds, config, seed, args.epochs))
                print(json.dumps({k: v for k, v in row.items() if k != "graph_acc_folds"}), flush=True)
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                done.append(row)
    command = "python " + " ".join(["benchmarks/graphs/encoders.py", *(argv or sys.argv[1:])])
    previous = json.loads(out.read_text()).get("command", "").splitlines() if out.is_file() else []
    if not args.write_only and previous and not any(c.split("  #")[0] == command for c in previous):
        command = "\n".join(previous + [command])  # every run that made rows stays recorded
    elif not args.write_only and previous:
        command = "\n".join(previous)
    if args.write_only:  # record the commands that made the rows, not this one
        command = "\n".join(args.command) or (json.loads(out.read_text()).get("command", command)
                                               if out.is_file() else command)
    result = {"command": command,
              "level": args.level, "configs": CONFIGS, "rows": done, "args": vars(args),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "torch_threads": args.threads,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
