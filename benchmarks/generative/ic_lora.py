"""IC-LoRA (card 20): a rank-4 LoRA on the frozen infiller's attention against full fine-tuning and no tuning.

    python benchmarks/generative/ic_lora.py --out benchmarks/generative/ic_lora.json

Protocol, fixed before the run. Per seed, the infiller VisualCloze's benchmark trained (``visualcloze.pretrained``,
the same folder when ``--work`` is shared) is the frozen base. New relations, never trained: transpose, erode
(held-out operations) and shift_left (a reverse task). For each relation and 20 / 50 / 100 tuning canvases (one
row ``[condition, target]``, the caption is the relation's text prompt): no tuning, LoRA (rank 4, alpha 4, on
q/k/v/o, lr 2e-3) and full fine-tuning (lr 3e-4), each 200 steps of 16 canvases with AdamW. Scored by the
infilling MSE of the target panel on 200 fresh canvases; the base with 2 in-context example rows instead of any
tuning is the VisualCloze reference. Trainable parameter counts and tuning seconds are recorded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RELATIONS = ("transpose", "erode", "shift_left")
SIZES = (20, 50, 100)
MODES = ("none", "lora", "full")


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from visualcloze import pretrained

    from anytask.data.images import prompt, task_grids
    from anytask.methods.generative import ICLoRA

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"iclora-{spec['seed']}-{spec['steps']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    base = pretrained(spec["seed"], spec["work"], spec["steps"])
    rows = []
    for r_i, rel in enumerate(RELATIONS):
        test, truth = task_grids(rel, spec["n"], 0, seed=20_000 + 31 * spec["seed"] + r_i)
        ctx, ctx_truth = task_grids(rel, spec["n"], 2, seed=20_000 + 31 * spec["seed"] + r_i)
        in_context = float(((base.infill(ctx, prompt(rel)) - ctx_truth) ** 2).mean())
        for size in SIZES:
            grids, targets = task_grids(rel, size, 0, seed=30_000 + 101 * spec["seed"] + 7 * r_i + size)
            canv = [[[g[-1][0], targets[i]]] for i, g in enumerate(grids)]
            for mode in MODES:
                t = time.perf_counter()
                tuned = ICLoRA(base, mode=mode, seed=spec["seed"]).fit(canv, caption=prompt(rel))
                secs = time.perf_counter() - t
                rows.append({"relation": rel, "canvases": size, "mode": mode, "trainable": tuned.trainable_,
                             "tune_s": round(secs, 2), "mse": float(((tuned.infill(test) - truth) ** 2).mean()),
                             "in_context_2_rows": in_context})
    res = {"seed": spec["seed"], "base_parameters": base.n_parameters_, "rows": rows}
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs) -> dict:
    out = {}
    for rel in RELATIONS + ("mean",):
        for size in SIZES:
            cell = {}
            for mode in MODES:
                per_seed = [np.mean([r["mse"] for r in j["rows"] if r["canvases"] == size and r["mode"] == mode
                                     and (rel == "mean" or r["relation"] == rel)]) for j in jobs]
                cell[mode] = [float(np.mean(per_seed)), float(np.std(per_seed))]
            ic = [np.mean([r["in_context_2_rows"] for r in j["rows"] if r["canvases"] == size and r["mode"] == "none"
                           and (rel == "mean" or r["relation"] == rel)]) for j in jobs]
            cell["in-context (2 rows, no tuning)"] = [float(np.mean(ic)), float(np.std(ic))]
            out[f"{rel}|{size}"] = cell
    params = {m: next(r["trainable"] for r in jobs[0]["rows"] if r["mode"] == m) for m in MODES}
    secs = {m: float(np.mean([r["tune_s"] for j in jobs for r in j["rows"] if r["mode"] == m])) for m in MODES}
    return {"cells": out, "trainable": params, "tune_s": secs, "base_parameters": jobs[0]["base_parameters"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6000, help="the base infiller's training steps")
    ap.add_argument("-n", type=int, default=200, help="test canvases per relation")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-generative-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "ic_lora.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import plot_ic_lora

    out = Path(args.out)
    if args.plot_only:
        return plot_ic_lora(json.loads(out.read_text()), out.with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"seed": s, "steps": args.steps, "n": args.n, "work": args.work} for s in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "ic_lora", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "relations": list(RELATIONS), "sizes": list(SIZES), "summary": summarise(jobs), "jobs": jobs,
              "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    out.write_text(json.dumps(result, indent=1))
    plot_ic_lora(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
