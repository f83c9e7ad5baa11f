"""Task hinting (card 28): sorting (or increment) trained on lengths 5-20, tested up to 100, with and without hints.

    python benchmarks/mechanisms/hinting.py --out benchmarks/mechanisms/hinting.json
    python benchmarks/mechanisms/hinting.py --task increment --out benchmarks/mechanisms/hinting_increment.json

Protocol, fixed before the run (the card's small-scale plan; nothing is chosen on the test lengths). Values
0-127 drawn without repetition (length 100 needs >= 100 distinct values), a 2-layer decoder-only transformer of
width 128 with 4 heads, 2,500 AdamW steps of 64 sequences (lr 1e-3, 100 warm-up steps, cosine decay), lengths
uniform in 5..20. Variants: sort alone (no positional encoding, and learned absolute positions as the contrast),
sort + count hint, sort + successor hint (hint examples are half of every batch: the same steps and sequences
per step for every variant, so a hinted model sees half as many sorting examples), and the length-tempered
softmax with and without the successor hint. Scored on 200 fresh sequences per test length: exact match (whole
output right; equal to greedy decoding's) and per-token accuracy; the hint task's own accuracy at 20 and 100.
Three seeds, two processes of one thread.

``--task increment`` (the paper's second check): the same model, steps and schedule on numbers of 5-20 decimal
digits (value tokens 0-9 of a 16-value vocabulary; the number of trailing 9s uniform, so carries of every length
are tested), output the digits of the number + 1; 4,000 steps (set before the run from one probe seed, 99, scored
at the training lengths only: at 2,500 steps increment alone was exact on 57 % of length-20 inputs, not yet
trained). Variants: increment alone (no positional encoding), + the carry hint (for each digit, whether the + 1
reaches it; a reconstruction, the card does not name the paper's hint), and the tempered softmax with and
without it (learned positions, the sort run's contrast, are left out for time).
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

SORT = {
    "sort only": {"hint": None},
    "sort only, learned positions": {"hint": None, "positions": "learned"},
    "sort + count hint": {"hint": "count"},
    "sort + successor hint": {"hint": "successor"},
    "sort only, tempered": {"hint": None, "tempered": True},
    "sort + successor hint, tempered": {"hint": "successor", "tempered": True},
}
INCREMENT = {
    "increment only": {"hint": None},
    "increment + carry hint": {"hint": "carry"},
    "increment only, tempered": {"hint": None, "tempered": True},
    "increment + carry hint, tempered": {"hint": "carry", "tempered": True},
}
TASKS = {"sort": (SORT, {}), "increment": (INCREMENT, {"task": "increment", "values": 16})}
LENGTHS = (10, 20, 30, 40, 50, 70, 100)


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from anytask.methods.mechanisms.hinting import HintedTransformer

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"hint-{spec['variant'].replace(' ', '_').replace(',', '')}-{spec['seed']}-" \
                                 f"{spec['steps']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    variants, common = TASKS[spec["task"]]
    model = HintedTransformer(steps=spec["steps"], seed=spec["seed"], **common, **variants[spec["variant"]]).fit()
    res = {"variant": spec["variant"], "seed": spec["seed"], "fit_s": round(model.fit_seconds_, 1),
           "parameters": sum(p.numel() for p in model.model_.parameters()),
           "scores": model.score(LENGTHS, n=spec["n"], seed=50_000 + spec["seed"]),
           "final_loss": model.history_[-1]}
    if model.hint:
        res["hint_scores"] = model.score((20, 100), n=spec["n"], task=model.hint, seed=60_000 + spec["seed"])
    if model.tempered:
        res["beta"] = [b.beta.detach().tolist() for b in model.model_.blocks]
    print(json.dumps({k: res[k] for k in ("variant", "seed", "fit_s")} | {"exact@100": res["scores"][100]["exact"]}),
          flush=True)
    res = json.loads(json.dumps(res))  # lengths become string keys, as in the cache and the result file
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict], variants) -> dict:
    out = {}
    for v in variants:
        js = [j for j in jobs if j["variant"] == v]
        row = {}
        for length in LENGTHS:
            for metric in ("exact", "token"):
                xs = [j["scores"][str(length)][metric] for j in js]
                row[f"{metric}@{length}"] = [float(np.mean(xs)), float(np.std(xs))]
        row["fit_s"] = float(np.mean([j["fit_s"] for j in js]))
        row["parameters"] = js[0]["parameters"]
        if "hint_scores" in js[0]:
            for length in (20, 100):
                xs = [j["hint_scores"][str(length)]["exact"] for j in js]
                row[f"hint_exact@{length}"] = [float(np.mean(xs)), float(np.std(xs))]
        out[v] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=tuple(TASKS), default="sort")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("-n", type=int, default=200, help="test sequences per length")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-hinting-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "hinting.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    out = Path(args.out)
    if args.plot_only:
        return plot(json.loads(out.read_text()), out.with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    variants = TASKS[args.task][0]
    specs = [{"task": args.task, "variant": v, "seed": s, "steps": args.steps, "n": args.n, "work": args.work}
             for s in range(args.seeds) for v in variants]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "hinting", "task": args.task,
              "command": " ".join(["python", "benchmarks/mechanisms/hinting.py", *sys.argv[1:]]),
              "seeds": args.seeds, "steps": args.steps, "lengths": list(LENGTHS), "variants": list(variants),
              "summary": summarise(jobs, variants), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    lengths = result["lengths"]
    for v in result["variants"]:
        row = result["summary"][v]
        for ax, metric in zip(axes, ("exact", "token")):
            m = [row[f"{metric}@{n}"][0] for n in lengths]
            s = [row[f"{metric}@{n}"][1] for n in lengths]
            ax.errorbar(lengths, m, yerr=s, marker="o", capsize=3, label=v)
    whole = "sorted output" if result.get("task", "sort") == "sort" else "incremented number"
    for ax, title in zip(axes, (f"exact match (whole {whole})", "per-token accuracy")):
        ax.axvspan(min(lengths), 20, color="0.9", zorder=0)
        ax.set_xlabel("input length n (trained on 5-20, shaded)")
        ax.set_title(title)
    axes[0].set_ylabel(f"mean ± sd over {result['seeds']} seeds")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
