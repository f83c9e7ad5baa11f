"""Task-agnostic graph valuation (card 10): do (W, R, D) move the way the paper says, and do they track what a
seller's labelled graph is worth to a buyer's GCN? Plus R / D of text data sets in MiniLM's space.

    python benchmarks/graphs/valuation.py --out benchmarks/graphs/valuation.json

Per seed: the buyer is a connected 300-node Cora subgraph (breadth-first from a random node); sellers are
connected 300-node Cora subgraphs disjoint from it, unchanged ("same distribution"), with Gaussian feature
noise sigma in {0.1, 0.3, 1}, or with a fraction r in {0.1, 0.3, 0.6} of their edges rewired by degree-
preserving double-edge swaps; plus the buyer itself under a random permutation ("identical"), that copy
with r of its edges rewired ("buyer rewired": structure alone changes, from W's matching noise floor), and a
CiteSeer subgraph ("other domain"). Every graph's features go through one shared random projection (zero-padded to
CiteSeer's 3,703 columns, then 3,703 -> 256, Gaussian, seed 0) so the two domains share a feature space.
Value: ``graph_value`` (2 hops, PCA directions for 95 % of the buyer's variance, FAQ matching with a signature
start, the barycentre and 3 random starts).
Utility (outside the paper's task-agnostic setting, as the card asks): a 2-layer GCN (16 hidden, dropout 0.5,
lr 0.01, weight decay 5e-4, 200 epochs: Kipf & Welling's) trained on 20 % of the buyer's nodes, alone or with
every seller node labelled as a second component (CiteSeer's classes offset past Cora's), tested on the other
80 %; gain = accuracy with the seller - without, mean of 3 GCN seeds (not for "identical" and "buyer rewired":
their labels are the buyer's own test labels).
Text: R and D of 1,000 training texts of each task for 1,000 of sst2's, all embedded by MiniLM-L6.
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


def rewire(edge_index: np.ndarray, frac: float, rng) -> np.ndarray:
    """Degree-preserving double-edge swaps of about ``frac`` of the undirected edges (no self-loops, no repeats)."""
    pairs = {tuple(sorted(e)) for e in edge_index.T.tolist()}
    edges = sorted(pairs)
    target, done, tries = int(frac * len(edges)), 0, 0
    while done < target and tries < 100 * max(target, 1):
        tries += 1
        i, j = rng.choice(len(edges), 2, replace=False)
        (a, b), (c, d) = edges[i], edges[j]
        if len({a, b, c, d}) < 4 or tuple(sorted((a, d))) in pairs or tuple(sorted((c, b))) in pairs:
            continue
        pairs -= {edges[i], edges[j]}
        edges[i], edges[j] = tuple(sorted((a, d))), tuple(sorted((c, b)))
        pairs |= {edges[i], edges[j]}
        done += 2
    e = np.array(edges).T
    return np.concatenate([e, e[::-1]], 1)


def gcn_accuracy(graphs, train_masks, test_mask, n_classes, seed) -> float:
    """A 2-layer GCN on the disjoint union of ``graphs`` (Data with x, y, edge_index); accuracy on the first
    graph's ``test_mask``."""
    import torch
    from torch_geometric.nn import GCNConv

    torch.manual_seed(seed)
    xs, ys, eis, trs, off = [], [], [], [], 0
    for g, m in zip(graphs, train_masks):
        xs.append(g.x)
        ys.append(g.y)
        eis.append(g.edge_index + off)
        trs.append(torch.as_tensor(m))
        off += g.num_nodes
    x, y, ei, tr = torch.cat(xs), torch.cat(ys), torch.cat(eis, 1), torch.cat(trs)
    c1, c2 = GCNConv(x.shape[1], 16), GCNConv(16, n_classes)
    opt = torch.optim.Adam(list(c1.parameters()) + list(c2.parameters()), lr=0.01, weight_decay=5e-4)
    for _ in range(200):
        c1.train()
        opt.zero_grad()
        h = torch.dropout(torch.relu(c1(torch.dropout(x, 0.5, True), ei)), 0.5, True)
        loss = torch.nn.functional.cross_entropy(c2(h, ei)[tr], y[tr])
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = c2(torch.relu(c1(x, ei)), ei).argmax(1)[:graphs[0].num_nodes]
    te = torch.as_tensor(test_mask)
    return float((pred[te] == graphs[0].y[te]).float().mean())


def graph_rows(seeds, size: int) -> list[dict]:
    import torch

    from anytask.data.graphs import load_graphs
    from anytask.methods.graphs.valuation import connected_subgraph, graph_value

    cora, cite = load_graphs("cora").graphs[0], load_graphs("citeseer").graphs[0]
    width = cite.num_features
    proj = np.random.default_rng(0).normal(size=(width, 256)).astype(np.float32) / np.sqrt(256)

    def project(g):
        x = np.zeros((g.num_nodes, width), np.float32)
        x[:, :g.num_features] = g.x.numpy()
        h = g.clone()
        h.x = torch.from_numpy((x @ proj).astype(np.float32))
        return h

    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        buyer = connected_subgraph(cora, size, seed=seed)
        taken = np.zeros(cora.num_nodes, bool)
        taken[buyer.node_ids.numpy()] = True
        base = connected_subgraph(cora, size, seed=1000 + seed, exclude=taken)
        sellers = {}
        perm = rng.permutation(size)
        same = buyer.clone()
        same.x, same.y = buyer.x[perm], buyer.y[perm]
        same.edge_index = torch.as_tensor(np.argsort(perm)[buyer.edge_index.numpy()])
        sellers["identical"] = ("identical", 0.0, same)
        sellers["same distribution"] = ("noise", 0.0, base)
        for sigma in (0.1, 0.3, 1.0):
            g = base.clone()
            g.x = g.x + torch.from_numpy(rng.normal(scale=sigma, size=tuple(g.x.shape)).astype(np.float32))
            sellers[f"noise {sigma}"] = ("noise", sigma, g)
        for r in (0.1, 0.3, 0.6):
            g = base.clone()
            g.edge_index = torch.as_tensor(rewire(base.edge_index.numpy(), r, rng))
            sellers[f"rewire {r}"] = ("rewire", r, g)
        for r in (0.1, 0.3, 0.6):  # the buyer's own graph rewired: structure alone moves, from W's noise floor
            g = same.clone()
            g.edge_index = torch.as_tensor(rewire(same.edge_index.numpy(), r, rng))
            sellers[f"buyer rewired {r}"] = ("self-rewire", r, g)
        other = connected_subgraph(cite, size, seed=seed, exclude=~cite.label_mask.numpy())
        other.y = other.y + 7
        sellers["citeseer"] = ("domain", 1.0, other)
        pb = project(buyer)
        labelled = rng.random(size) < 0.2
        test = ~labelled
        alone = np.mean([gcn_accuracy([pb], [labelled], test, 13, s) for s in range(3)])
        for name, (kind, level, g) in sellers.items():
            start = time.perf_counter()
            pg = project(g)
            value = graph_value(pb, pg, hops=2, seed=seed)
            seconds = time.perf_counter() - start
            # the identical seller carries the buyer's own test labels: its "gain" would be a leak, not a value
            both = np.nan if kind in ("identical", "self-rewire") else np.mean(
                [gcn_accuracy([pb, pg], [labelled, np.ones(g.num_nodes, bool)], test, 13, s) for s in range(3)])
            row = {"seed": seed, "seller": name, "kind": kind, "level": level, "W": value["W"],
                   "relevance": value["relevance"], "diversity": value["diversity"],
                   "components": value["components"], "gcn_alone": float(alone),
                   "gcn_with_seller": None if np.isnan(both) else float(both),
                   "gain": None if np.isnan(both) else float(both - alone), "value_seconds": seconds}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def text_rows(data_root: Path, n: int = 1000) -> list[dict]:
    from anytask.backbones import get_embedder
    from anytask.data import load_dataset
    from anytask.methods.graphs.valuation import relevance_diversity

    emb = get_embedder("minilm")

    def sample(task, seed, skip=None):
        train, _ = load_dataset(task, data_root=data_root)
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(train))
        if skip is not None:
            idx = idx[~np.isin(idx, skip)]
        idx = np.sort(idx[:n])
        return emb.embed([train.X[i] for i in idx]), idx

    buyer, used = sample("sst2", 0)
    rows = []
    for task in ("sst2", "rotten_tomatoes", "imdb", "financial_phrasebank", "ag_news", "sms_spam", "trec"):
        if not (data_root / task).is_dir():
            continue
        X, _ = sample(task, 1, skip=used if task == "sst2" else None)
        r = relevance_diversity(buyer, X)
        row = {"buyer": "sst2", "seller": task + (" (other rows)" if task == "sst2" else ""), **r}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["graph_rows"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (kind, levels, xlabel) in zip(axes[:2], [("noise", (0.0, 0.1, 0.3, 1.0), "feature noise sigma"),
                                                     ("rewire", (0.0, 0.1, 0.3, 0.6), "edges rewired")]):
        for key, color in (("relevance", "C0"), ("diversity", "C1")):
            vals = [[r[key] for r in rows if (r["kind"] == kind and r["level"] == lv) or
                     (lv == 0 and r["seller"] == "same distribution")] for lv in levels]
            ax.errorbar(levels, [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], marker="o",
                        color=color, label=key, capsize=3)
        ax2 = ax.twinx()
        vals = [[r["W"] for r in rows if (r["kind"] == kind and r["level"] == lv) or
                 (lv == 0 and r["seller"] == "same distribution")] for lv in levels]
        ax2.errorbar(levels, [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], marker="s", color="C2",
                     label="W", capsize=3)
        if kind == "rewire":
            own = [[r["W"] for r in rows if (r["kind"] == "self-rewire" and r["level"] == lv) or
                    (lv == 0 and r["seller"] == "identical")] for lv in levels]
            ax2.errorbar(levels, [np.mean(v) for v in own], yerr=[np.std(v) for v in own], marker="s", color="C3",
                         label="W, buyer's own graph rewired", capsize=3)
            ax2.legend(loc="center right", fontsize=8)
        ax2.set_ylabel("W (structural)", color="C2")
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1)
        ax.legend(loc="center left", fontsize=8)
    ax = axes[2]
    for kind, marker in (("noise", "o"), ("rewire", "s"), ("domain", "^")):
        sub = [r for r in rows if r["kind"] == kind and r["gain"] is not None]
        ax.scatter([r["relevance"] for r in sub], [r["gain"] for r in sub], marker=marker, label=kind)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("relevance R")
    ax.set_ylabel("GCN accuracy gain from the seller")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "text"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = graph_rows([int(s) for s in args.seeds.split(",")], args.size)
    scored = [r for r in rows if r["gain"] is not None]
    corr = {key: spearman([r[key] for r in scored], [r["gain"] for r in scored])
            for key in ("relevance", "diversity", "W")}
    texts = text_rows(Path(args.data_root)) if Path(args.data_root).is_dir() else []
    result = {"command": "python " + " ".join(["benchmarks/graphs/valuation.py", *(argv or sys.argv[1:])]),
              "graph_rows": rows, "spearman_with_gain": corr, "text_rows": texts, "args": vars(args),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
