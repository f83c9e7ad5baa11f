"""VisualCloze (card 31): one grid infiller, unseen tasks from in-context rows.

    python benchmarks/generative/visualcloze.py --out benchmarks/generative/visualcloze.json

Protocol, fixed before the run. Per seed, a ``GridInfiller`` (0.8 M parameters; 3,000 steps of 48 grids with 0–2
example rows; text prompts through frozen MiniLM, dropped for half the batches) is trained on the 90 training
tasks of ``anytask.data.images`` over fresh procedural shapes. It is scored by infilling MSE on 200 fresh grids
per task (evaluation seeds apart from training) with 0, 1 and 2 example rows, without and with the text prompt,
on four groups: 8 training tasks (seen), the held-out operations (transpose, erode), the held-out compositions
(pairs of trained operations never trained together) and the reverse tasks (inverses of trained shifts and the
rotation). Baselines in the same run: copy the query's condition; copy the target of the first example row (the
card's copy baseline); the mean of the example targets; and, as an oracle that knows the task, its mean target
panel (the best constant under MSE, from 1,000 other grids). MNIST digits (shared data, 16 px) as a second image
source for the held-out groups, never trained on. No setting was tuned on these groups. Pictures: infills of
held-out tasks.
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

SEEN = ("invert", "flip_h", "rot90", "edges", "threshold+flip_v", "shift_right+invert", "blur+rot90", "dilate+edges")
ROWS = (0, 1, 2)


def groups():
    from anytask.data.images import HELDOUT_COMPOSITIONS, HELDOUT_TASKS, REVERSE_TASKS

    return {"seen": SEEN, "held-out operations": HELDOUT_TASKS, "held-out compositions": HELDOUT_COMPOSITIONS,
            "reverse": REVERSE_TASKS}


def pretrained(seed: int, work: str, steps: int = 3000):
    """The seed's infiller, trained once and kept as a folder in ``work`` (IC-LoRA starts from it too)."""
    from anytask.core import io
    from anytask.methods.generative import GridInfiller

    folder = Path(work) / f"infiller-{seed}-{steps}"
    if (folder / "config.json").is_file():
        return io.load(folder)
    model = GridInfiller(steps=steps, seed=seed, text_backbone="minilm").fit()
    io.save(model, folder)
    return model


def _baselines(grids, truth, rows, task_mean):
    cond = np.stack([g[-1][0] for g in grids])
    out = {"copy condition": float(((cond - truth) ** 2).mean()),
           "task-mean panel (oracle)": float(((task_mean[None] - truth) ** 2).mean())}
    if rows:
        out["copy example target"] = float(((np.stack([g[0][1] for g in grids]) - truth) ** 2).mean())
        out["mean of example targets"] = float(((np.mean([[r[1] for r in g[:-1]] for g in grids], axis=1) - truth)
                                                ** 2).mean())
    return out


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from anytask.data.images import mnist_images, prompt, task_grids

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"vc-{spec['seed']}-{spec['steps']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    t = time.time()
    model = pretrained(spec["seed"], spec["work"], spec["steps"])
    sources = {"shapes": "shapes"}
    try:
        sources["mnist"] = mnist_images(2000, 16, seed=500 + spec["seed"])
    except Exception as e:  # the shared data is absent: shapes only, and say so
        print(f"MNIST skipped: {e}")
    rows = []
    for source, images in sources.items():
        for group, tasks in groups().items():
            if source == "mnist" and group == "seen":
                continue
            for task in tasks:
                # the best constant panel for this task: the mean target of 1,000 other grids (it knows the task)
                task_mean = task_grids(task, 1000, 0, source=images, seed=90_000 + spec["seed"])[1].mean(axis=0)
                for k in ROWS:
                    grids, truth = task_grids(task, spec["n"], k, source=images, seed=10_000 + 97 * spec["seed"] + k)
                    for text in (False, True):
                        pred = model.infill(grids, prompt(task) if text else None)
                        rows.append({"source": source, "group": group, "task": task, "rows": k, "text": text,
                                     "mse": float(((pred - truth) ** 2).mean())})
                    rows.append({"source": source, "group": group, "task": task, "rows": k, "text": None,
                                 "baselines": _baselines(grids, truth, k, task_mean)})
    res = {"seed": spec["seed"], "train_seconds": model.train_seconds_, "parameters": model.n_parameters_,
           "final_loss": model.history_[-1][1], "rows": rows, "job_s": round(time.time() - t, 1)}
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs) -> dict:
    """Per source x group x rows: mean (over seeds, of the mean over the group's tasks) and sd over seeds."""
    out = {}
    for source in ("shapes", "mnist"):
        for group in groups():
            for k in ROWS:
                cell = {}
                for name, pick in (("visual", False), ("visual + text", True)):
                    per_seed = [[r["mse"] for r in j["rows"] if r["source"] == source and r["group"] == group
                                 and r["rows"] == k and r["text"] is pick] for j in jobs]
                    if all(per_seed):
                        means = [np.mean(x) for x in per_seed]
                        cell[name] = [float(np.mean(means)), float(np.std(means))]
                base = [[r["baselines"] for r in j["rows"] if r["source"] == source and r["group"] == group
                         and r["rows"] == k and r["text"] is None] for j in jobs]
                for b in (base[0][0] if base and base[0] else {}):
                    means = [np.mean([x[b] for x in per]) for per in base]  # per seed: the mean over the tasks
                    cell[b] = [float(np.mean(means)), float(np.std(means))]
                if cell:
                    out[f"{source}|{group}|{k}"] = cell
    return out


def pictures(seed: int, work: str, steps: int, out: Path) -> None:
    from anytask.data.images import HELDOUT_COMPOSITIONS, HELDOUT_TASKS, REVERSE_TASKS, sheet, task_grids, write_png

    model = pretrained(seed, work, steps)
    blocks = []
    for task in HELDOUT_TASKS + HELDOUT_COMPOSITIONS[:2] + REVERSE_TASKS[:2]:
        grids, truth = task_grids(task, 1, 2, seed=7)
        blocks.append(sheet(grids, model.infill(grids), truth))
    gap = np.full((blocks[0].shape[0], 3), 0.5, np.float32)
    write_png(out, np.concatenate([x for b in blocks for x in (b, gap)][:-1], axis=1), scale=5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("-n", type=int, default=200, help="grids per task, rows and prompt setting")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-generative-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "visualcloze.json"))
    ap.add_argument("--plot-only", action="store_true", help="recompute the summary and figure from --out's rows")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from render import plot_visualcloze

    out = Path(args.out)
    if args.plot_only:  # the summary is recomputed from the stored per-seed rows, then the figure redrawn
        result = json.loads(out.read_text())
        result["summary"] = summarise(result["jobs"])
        out.write_text(json.dumps(result, indent=1))
        return plot_visualcloze(result, out.with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"seed": s, "steps": args.steps, "n": args.n, "work": args.work} for s in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "visualcloze", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "steps": args.steps, "n": args.n, "groups": {k: list(v) for k, v in groups().items()},
              "summary": summarise(jobs), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    out.write_text(json.dumps(result, indent=1))
    pictures(0, args.work, args.steps, out.with_name(out.stem + "_infills.png"))
    plot_visualcloze(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
