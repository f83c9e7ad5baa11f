"""Path patching's second stage on SmolLM2-135M-Instruct: which heads feed the circuits' top heads (card 29).

    python benchmarks/mechanisms/paths.py --n 32 --out benchmarks/mechanisms/paths.json
    python benchmarks/mechanisms/paths.py --n 32 --into keys_values --out benchmarks/mechanisms/paths_kv.json

Receivers, per task, are its 3 heads with the largest seed-mean first-stage effect in the committed
``circuits.json`` (activation patching on make_prompts(task, 96, seed), seeds 0-2); path patching then runs on
fresh sets of ``--n`` prompts per seed (32 by default; each run records its seconds). For
every sender head below a task's lowest receiver, the sender's final-token output is taken from the
corrupted run while every head between it and the receivers keeps its clean output; the receivers' queries are
read from that run and written into the clean run; the effect is the share of the clean -> corrupted
logit-difference gap that moves (``path_effects``). With ``--into keys_values`` the other half of the paths: the
sender is taken from the corrupted run at every earlier position (clean at the final one), every head between it
and the receivers keeps its clean output at every position, and each receiver's own final-token output in that run
(its clean query reading the changed keys and values) is written into the clean run; prompts whose corrupted
version has another token count are skipped and counted. The senders' circuits (top 5 / 10 % of the senders both
tasks measure) are compared across tasks as the first stage was, with chance overlap. Writes the JSON and a
heat map (PNG) beside it.
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

HERE = Path(__file__).resolve().parent
TASKS = {"ioi": "IOI", "colored_objects": "Colored Objects"}


def receivers_from(circuits: dict, k: int = 3) -> dict:
    out = {}
    for task in TASKS:
        effects = np.mean([np.asarray(run[task]["effects"]) for run in circuits["runs"]], axis=0)
        top = np.argsort(-effects, axis=None)[:k]
        out[task] = sorted((int(i // effects.shape[1]), int(i % effects.shape[1])) for i in top)
    return out


def heat_map(result: dict, path: Path) -> None:
    sys.path.insert(0, str(HERE))
    from circuits import draw_heat_maps

    what = "keys and values" if result.get("into") == "keys_values" else "queries"
    maps = []
    for task in TASKS:
        with warnings.catch_warnings():  # rows of non-senders are all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            effects = np.nanmean([np.asarray(r[task]["effects"], dtype=float) for r in result["runs"]], axis=0)
        maps.append((f"{TASKS[task]}: senders -> receivers' {what}", effects, result["receivers"][task]))
    draw_heat_maps(maps, f"SmolLM2-135M, mean of {len(result['runs'])} seeds: share of the logit-difference gap a "
                   f"sender moves through the receivers' {what} alone (blank: not a sender)", path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=96, help="prompts per task and seed")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--into", choices=("queries", "keys_values"), default="queries",
                   help="the receivers' final-token queries, or their keys and values at earlier positions")
    p.add_argument("--circuits", default=str(HERE / "circuits.json"))
    p.add_argument("--work", default="/tmp/anytask-paths-bench", help="per-seed results are cached here")
    p.add_argument("--out", default=str(HERE / "paths.json"))
    args = p.parse_args(argv)

    import torch

    from anytask.backbones import get_backbone, state_hash
    from anytask.backbones.patching import HeadHooks
    from anytask.methods.mechanisms import make_prompts
    from anytask.methods.mechanisms.circuits import circuit, overlap, path_effects

    torch.set_num_threads(1)
    receivers = receivers_from(json.loads(Path(args.circuits).read_text()))
    lm = get_backbone("smollm2")
    before = state_hash(lm)
    hooks = HeadHooks(lm)
    common = min(min(r[0] for r in recv) for recv in receivers.values())  # senders both tasks measure: layers below
    runs = []
    Path(args.work).mkdir(parents=True, exist_ok=True)
    for seed in [int(s) for s in args.seeds.split(",")]:
        tag = "" if args.into == "queries" else "-kv"
        cache = Path(args.work) / f"paths{tag}-{seed}-{args.n}.json"
        if cache.is_file():
            runs.append(json.loads(cache.read_text()))
            continue
        run, t = {"seed": seed}, time.perf_counter()
        for task in TASKS:
            res = path_effects(hooks, make_prompts(task, args.n, seed), receivers[task], into=args.into,
                               batch_size=args.batch_size, progress=True)
            run[task] = {**{k: v for k, v in res.items() if k != "effects"},
                         "effects": [[None if np.isnan(x) else float(x) for x in row] for row in res["effects"]]}
            print(json.dumps({"seed": seed, "task": task, "ld_clean": res["ld_clean"], "n": res["n"],
                              "seconds": round(time.perf_counter() - t, 1)}), flush=True)
        shared = {}
        for f in (0.05, 0.1):
            a = circuit(np.asarray(run["ioi"]["effects"], dtype=float)[:common], f)
            b = circuit(np.asarray(run["colored_objects"]["effects"], dtype=float)[:common], f)
            shared[str(f)] = {**overlap(a, b), "size": len(b), "chance": len(a) / (common * hooks.n_heads)}
        run["overlaps"] = shared
        run["seconds"] = round(time.perf_counter() - t, 1)
        run = json.loads(json.dumps(run))
        cache.write_text(json.dumps(run))
        runs.append(run)
    assert state_hash(lm) == before, "the backbone's weights changed"
    result = {"command": "python " + " ".join(["benchmarks/mechanisms/paths.py", *sys.argv[1:]]),
              "into": args.into, "receivers": receivers, "common_sender_layers": common, "runs": runs,
              "args": vars(args),
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    heat_map(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
