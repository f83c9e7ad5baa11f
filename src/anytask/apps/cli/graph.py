"""``anytask graph train / embed``: an unsupervised graph encoder trained once, saved as a folder, and reused
frozen: node or graph embeddings written as a ``.npz`` that ``anytask bench --tasks features:<file>`` (and every
feature head) reads unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from anytask.apps.cli.common import check_out, out_opts, parse_params, positive_int


def add_parser(sub) -> None:
    sp = sub.add_parser("graph", help="train a graph encoder without labels, or embed graphs with a saved one "
                        "(needs the graph extra)")
    gsub = sp.add_subparsers(dest="graph_command", required=True, metavar="ACTION")
    tr = gsub.add_parser("train", help="train an encoder (gae, vgae, isoc_vgae) on a graph or a set of graphs")
    tr.add_argument("--data", required=True, help="cora, citeseer, mutag, proteins (shared data), a .npz "
                    "(features, edge_index[, labels, train_idx, ...]) or a TU folder")
    tr.add_argument("--data-root", default=os.environ.get("ANYTASK_SHARED_DATA"),
                    help="the shared data folder holding graph/ (default: $ANYTASK_SHARED_DATA or ../shared/data)")
    tr.add_argument("--encoder", default="isoc_vgae", help="gae, vgae or isoc_vgae (default)")
    tr.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the encoder's, 200)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--param", action="append", metavar="KEY=VALUE", help="another encoder parameter, e.g. layers=3")
    tr.add_argument("--no-progress", action="store_true")
    out_opts(tr, "folder to save the encoder in (config.json + model.safetensors)")
    tr.set_defaults(func=run_train)
    em = gsub.add_parser("embed", help="embed graphs with a saved encoder into a .npz (X, y and the split)")
    em.add_argument("--model", required=True, help="a folder written by anytask graph train")
    em.add_argument("--data", required=True, help="the graph(s), as for train (same node features)")
    em.add_argument("--data-root", default=os.environ.get("ANYTASK_SHARED_DATA"))
    em.add_argument("--level", choices=["node", "graph"], default=None,
                    help="node embeddings of one graph, or one pooled row per graph (default: by the data)")
    em.add_argument("--out", required=True, help=".npz (X, y, train_idx, test_idx) or .npy (X only)")
    em.add_argument("--force", action="store_true", help="replace --out if it exists")
    em.set_defaults(func=run_embed)


def _graphs(args):
    from anytask.data.graphs import load_graphs

    return load_graphs(args.data, data_root=args.data_root)


def run_train(args) -> None:
    import time

    from anytask.core import io
    from anytask.methods.graphs import ENCODERS

    check_out(args)
    params = {"seed": args.seed, "progress": not args.no_progress, **parse_params(args.param)}
    if args.epochs is not None:
        params["epochs"] = args.epochs
    encoder = ENCODERS.get(args.encoder)(**params)
    gs = _graphs(args)
    start = time.perf_counter()
    encoder.fit(gs)
    seconds = time.perf_counter() - start
    encoder.progress = False  # saved folders do not draw bars when reloaded
    io.save(encoder, args.out)
    print(json.dumps({"saved": str(args.out), "encoder": args.encoder, "graphs": len(gs), "level": gs.level,
                      "features": gs.num_features, "fit_seconds": round(seconds, 2),
                      "final_loss": {k: round(v, 5) for k, v in encoder.history_[-1].items()}}))


def run_embed(args) -> None:
    import numpy as np

    from anytask.core import io
    from anytask.core.errors import AnytaskError
    from anytask.methods.graphs import GraphEncoder

    out = Path(args.out)
    if out.suffix not in (".npz", ".npy"):
        raise AnytaskError(f"--out {out}: write a .npz (embeddings, labels and split) or a .npy (embeddings)")
    if out.exists() and not args.force:
        raise AnytaskError(f"--out {out} already exists; pass --force to replace it")
    encoder = io.load(args.model)
    if not isinstance(encoder, GraphEncoder):
        raise AnytaskError(f"{args.model} holds a {type(encoder).__name__}, not a graph encoder")
    gs = _graphs(args)
    level = args.level or gs.level
    X = encoder.embed(gs, level=level)
    arrays = {"X": X.astype(np.float32)}
    if level == "graph":
        arrays["y"] = gs.labels
    elif getattr(gs.graphs[0], "y", None) is not None:
        g = gs.graphs[0]
        labelled = g.label_mask.numpy() if "label_mask" in g else np.ones(g.num_nodes, bool)
        test = g.test_mask.numpy() if "test_mask" in g else np.zeros(g.num_nodes, bool)
        arrays.update(y=g.y.numpy(), train_idx=np.flatnonzero(labelled & ~test), test_idx=np.flatnonzero(test))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")
    if out.suffix == ".npy":
        np.save(tmp, arrays["X"])
    else:
        np.savez(tmp, **arrays)
    os.replace(tmp, out)
    print(json.dumps({"out": str(out), "level": level, "rows": int(X.shape[0]), "dim": int(X.shape[1]),
                      "labels": "y" in arrays}))
