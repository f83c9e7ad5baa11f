"""LSceneLLM (card 24): the attention-guided magnifier against coarse-only and all-fine readers on toy scenes.

    python benchmarks/generative/lscenellm.py --out benchmarks/generative/lscenellm.json
    python benchmarks/generative/lscenellm.py --scenes small --out benchmarks/generative/lscenellm_small.json

Protocol, fixed before the run (the card's toy task): 16 coarse region tokens, each the mean of 4 hidden fine
tokens (colour one-hot ⊕ shape one-hot + noise; 12 colours, 6 shapes); the question names a colour that is on
exactly one element and the answer is its shape (chance 1/6). ``--scenes small`` (8 regions x 4, 8 colours,
4 shapes; chance 1/4) is the second, smaller configuration, added after the card-sized run. Per seed: 20,000
training scenes, 2,000 test scenes (other seeds); a 3-layer transformer of width 64 (the card's 128 halved for
CPU time) trained 1,000 steps of 64 scenes (AdamW, lr 3e-3; the base alone for the first 30 %, then the blend
warms up over 20 %) as coarse-only, all-fine (every fine token in the sequence: the upper bound at more
compute), the magnifier from the first layer (``start=0``, the default) and from the second (``start=1``, the
card's "from layer 2"). Reported: accuracy, keys attended per text token summed over layers, regions magnified,
and the question token's selection recall / precision of the relevant region; training seconds on one thread.
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

SCENES = {"card": {"regions": 16, "fine": 4, "colours": 12, "shapes": 6},   # the card's toy scenes
          "small": {"regions": 8, "fine": 4, "colours": 8, "shapes": 4}}
VARIANTS = {"coarse only": {"mode": "coarse"}, "all fine (upper bound)": {"mode": "all-fine"},
            "magnifier (from layer 1)": {"mode": "magnifier", "start": 0},
            "magnifier (from layer 2)": {"mode": "magnifier", "start": 1}}


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from anytask.data.scenes import toy_scenes
    from anytask.methods.generative import SceneReader

    torch.set_num_threads(1)
    tag = "" if spec["scenes"] == "card" else spec["scenes"] + "-"
    cache = Path(spec["work"]) / f"lscene-{tag}{spec['seed']}-{spec['variant'].split()[0]}-{spec['steps']}" \
        f"-{VARIANTS[spec['variant']].get('start', 0)}-{spec['width']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    train = toy_scenes(20_000, seed=100 + spec["seed"], **SCENES[spec["scenes"]])
    test = toy_scenes(2_000, seed=900 + spec["seed"], **SCENES[spec["scenes"]])
    t = time.perf_counter()
    reader = SceneReader(steps=spec["steps"], width=spec["width"], seed=spec["seed"],
                         **VARIANTS[spec["variant"]]).fit(train)
    res = {"variant": spec["variant"], "seed": spec["seed"], "train_s": round(time.perf_counter() - t, 1),
           **reader.report(test), "final_loss": reader.history_[-1][1]}
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict], variants, extra: tuple[str, ...] = ()) -> dict:
    """Per reader: mean and sd over seeds of each reported number, and the mean selection recall by layer."""
    summary = {}
    for v in variants:
        rows = [j for j in jobs if j["variant"] == v]
        cell = {"n": len(rows)}
        for k in ("accuracy", "tokens_attended", "regions_magnified", "selection_recall", "selection_precision",
                  "train_s") + extra:
            vals = [r[k] for r in rows if k in r]
            if vals:
                cell[k], cell[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
        if "recall_by_layer" in rows[0]:
            cell["recall_by_layer"] = np.mean([r["recall_by_layer"] for r in rows], axis=0).round(4).tolist()
        summary[v] = cell
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--scenes", choices=list(SCENES), default="card",
                    help="card: 16 regions x 4, 12 colours, 6 shapes; small: 8 regions x 4, 8 colours, 4 shapes")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-generative-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "lscenellm.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import plot_lscenellm

    out = Path(args.out)
    if args.plot_only:
        return plot_lscenellm(json.loads(out.read_text()), out.with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"variant": v, "seed": s, "steps": args.steps, "width": args.width, "scenes": args.scenes,
              "work": args.work}
             for s in range(args.seeds) for v in VARIANTS]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "lscenellm", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "steps": args.steps, "width": args.width, "scenes": SCENES[args.scenes], "variants": list(VARIANTS),
              "summary": summarise(jobs, VARIANTS), "jobs": jobs,
              "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    out.write_text(json.dumps(result, indent=1))
    plot_lscenellm(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
