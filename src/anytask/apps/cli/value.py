"""``anytask value``: task-agnostic value of seller data for a buyer — relevance, diversity and (graphs) the
structural distance W — with no downstream task."""

from __future__ import annotations

import json
import os
from pathlib import Path

from anytask.apps.cli.common import backbone_opts, positive_int


def add_parser(sub) -> None:
    sp = sub.add_parser("value", help="relevance / diversity (and graph structural distance) of seller data for a "
                        "buyer, without a task")
    sp.add_argument("--buyer", required=True, help="a graph (cora, citeseer, or a .npz with features and "
                    "edge_index), a .npy matrix, or a task (a folder of --data-root, embedded by --backbone)")
    sp.add_argument("--seller", required=True, action="append", help="the same kinds; repeatable")
    sp.add_argument("--data-root", default=os.environ.get("ANYTASK_DATA_ROOT"),
                    help="text tasks and shared graphs are looked up here (default: $ANYTASK_DATA_ROOT)")
    sp.add_argument("--subgraph", type=positive_int, default=300,
                    help="graphs larger than this are valued on a connected subgraph of this many nodes "
                         "(graph matching is cubic in nodes; default 300)")
    sp.add_argument("--hops", type=int, default=2, help="rounds of blind message passing (default 2)")
    sp.add_argument("--variance", type=float, default=0.95, help="buyer variance the PCA directions keep (0.95)")
    sp.add_argument("--max-rows", type=positive_int, default=2000, help="rows of a text task embedded (2,000)")
    sp.add_argument("--seed", type=int, default=0)
    backbone_opts(sp)
    sp.set_defaults(func=run)


def _is_graph(spec: str) -> bool:
    from anytask.data.graphs import PLANETOID

    p = Path(spec)
    if spec.lower() in PLANETOID:
        return True
    if p.suffix == ".npz" and p.is_file():
        import numpy as np

        return "edge_index" in np.load(p).files
    return False


def _load(spec: str, args, embedder):
    """``("graph", Data)`` or ``("matrix", array)``."""
    import numpy as np

    from anytask.core.errors import AnytaskError

    if _is_graph(spec):
        from anytask.data.graphs import load_graphs
        from anytask.methods.graphs.valuation import connected_subgraph

        g = load_graphs(spec, data_root=args.data_root).graphs[0]
        if g.num_nodes > args.subgraph:
            g = connected_subgraph(g, args.subgraph, seed=args.seed)
        return "graph", g
    p = Path(spec)
    if p.suffix == ".npy":
        if not p.is_file():
            raise AnytaskError(f"{spec}: no such file")
        return "matrix", np.load(p)
    from anytask.data import load_dataset

    train, _ = load_dataset(spec, data_root=args.data_root)
    if not train.is_text:
        return "matrix", np.asarray(train.X, np.float64)[:args.max_rows]
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(train), size=min(args.max_rows, len(train)), replace=False))
    return "matrix", embedder().embed([train.X[i] for i in idx])


def run(args) -> None:
    from anytask.core.errors import AnytaskError
    from anytask.methods.graphs.valuation import graph_value, relevance_diversity

    def embedder():
        from anytask.backbones import get_embedder

        return get_embedder(args.backbone, cache_dir=args.cache_dir, device=args.device)

    kind, buyer = _load(args.buyer, args, embedder)
    for spec in args.seller:
        skind, seller = _load(spec, args, embedder)
        if skind != kind:
            raise AnytaskError(f"buyer {args.buyer} is a {kind}, seller {spec} a {skind}: value like with like")
        if kind == "graph":
            r = graph_value(buyer, seller, hops=args.hops, variance=args.variance, seed=args.seed)
        else:
            r = relevance_diversity(buyer, seller, variance=args.variance)
        print(json.dumps({"buyer": args.buyer, "seller": spec,
                          **{k: round(v, 5) if isinstance(v, float) else v for k, v in r.items()}}))
