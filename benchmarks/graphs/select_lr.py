"""How IsoC-VGAE's lr was chosen: AUC on Cora's *validation* edges (the seed-0 85/5/10 split), 100 epochs,
each candidate otherwise at the class's defaults. Test edges are never scored here.

    python benchmarks/graphs/select_lr.py --out benchmarks/graphs/select_lr.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lrs", default="0.005,0.001,0.0005")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import torch
    from sklearn.metrics import roc_auc_score

    from anytask.data.graphs import link_split, load_graphs
    from anytask.methods.graphs import ENCODERS

    torch.set_num_threads(2)
    train, val, _ = link_split(load_graphs("cora").graphs[0], seed=0)
    pairs = np.concatenate([val.pos_edge_label_index.numpy(), val.neg_edge_label_index.numpy()], 1)
    truth = np.r_[np.ones(val.pos_edge_label_index.shape[1]), np.zeros(val.neg_edge_label_index.shape[1])]
    rows = []
    for lr in [float(x) for x in args.lrs.split(",")]:
        start = time.perf_counter()
        enc = ENCODERS.get("isoc_vgae")(lr=lr, epochs=args.epochs, seed=0).fit(train)
        rows.append({"lr": lr, "val_auc": float(roc_auc_score(truth, enc.link_scores(train, pairs))),
                     "fit_s": time.perf_counter() - start})
        print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python " + " ".join(["benchmarks/graphs/select_lr.py", *(argv or sys.argv[1:])]),
              "rows": rows, "chosen": max(rows, key=lambda r: r["val_auc"])["lr"], "args": vars(args)}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
