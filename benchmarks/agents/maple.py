"""MAPLE (card 17): the persistent-FSM agent against its ablations on the simulated phone
(``anytask.data.appworld``), with MiniLM merging screens:

    python benchmarks/agents/maple.py --out benchmarks/agents/maple.json

Protocol, fixed before the run. Merge threshold: chosen on random walks with their own seeds (900+) as the
threshold with the best balanced accuracy at telling "same screen" from "another screen with the same elements"
by MiniLM cosine, then used by every variant; exact matching (threshold 1.0) is a variant. Per seed, the 28 tasks
are shuffled: the agent runs the first 14 once (``fit``: knowledge built) and is scored on the other 14
(``evaluate``: task success, recovery success = success among episodes with an injected fault, action accuracy,
steps), at two fault rates (pop-up, dead click and wrong navigation at 5 % each per step, then 15 %). Second run:
per held-out task, a fresh agent runs it twice; steps and success of each run. Actor: the scripted word-overlap
actor; SmolLM2-135M-Instruct rating the elements instead on the second-run protocol (3 tasks, seed 0), with its
calls and seconds. Variants: full; no FSM (reactive); FSM without pre/post-condition checks; no persistence (an
empty FSM for every task); exact-match states.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

VARIANTS = {"full": {}, "no FSM (reactive)": {"fsm": False}, "FSM without checks": {"checks": False},
            "no persistence": {"persist": False}, "exact-match states": {"threshold": 1.0}}
FAULTS = {"5%": 0.05, "15%": 0.15}
SECOND_RUN = ("full", "no persistence", "no FSM (reactive)")


def _embed():
    from anytask.methods.agents.maple import _minilm_embed

    return _minilm_embed()


def calibrate(work: Path) -> dict:
    out = work / "calibration.json"
    if out.is_file():
        return json.loads(out.read_text())
    from anytask.data.appworld import AppWorld, all_tasks

    embed, tasks = _embed(), all_tasks()
    texts, ids, elements = [], [], []
    for k in range(12):
        world = AppWorld(0.1, 0.1, 0.1, max_steps=60)
        rng = np.random.default_rng(900 + k)
        obs, _ = world.reset(seed=900 + k, options={"task": tasks[k]})
        while world.task is not None:
            texts.append(obs["screen"])
            ids.append("popup" if world.popup else world.screen)
            elements.append(tuple(obs["elements"]))
            obs, *_ = world.step(str(rng.choice(world.actions())))
    X = embed(texts)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    S = X @ X.T
    iu = np.triu_indices(len(ids), 1)
    keep = np.array([elements[i] == elements[j] for i, j in zip(*iu)])
    same = np.array([ids[i] == ids[j] for i, j in zip(*iu)])[keep]
    sims = S[iu][keep]
    grid = np.round(np.arange(0.70, 0.995, 0.01), 2)
    bal = [0.5 * ((sims[same] >= t).mean() + (sims[~same] < t).mean()) for t in grid]
    best = float(grid[int(np.argmax(bal))])
    res = {"threshold": best, "balanced_accuracy": float(max(bal)), "pairs_same": int(same.sum()),
           "pairs_other": int((~same).sum()), "same_merged": float((sims[same] >= best).mean()),
           "other_merged": float((sims[~same] >= best).mean()), "observations": len(ids)}
    out.write_text(json.dumps(res))
    return res


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.data.appworld import all_tasks
    from anytask.methods.agents.maple import MapleAgent

    out = Path(spec["work"]) / f"{spec['key']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    tasks = all_tasks()
    order = np.random.default_rng(spec["seed"]).permutation(len(tasks))
    train, test = [tasks[i] for i in order[:14]], [tasks[i] for i in order[14:]]
    p = FAULTS[spec["faults"]]
    params = {"threshold": spec["threshold"], **VARIANTS[spec["variant"]]}
    embed = _embed()
    t = time.time()
    agent = MapleAgent(**params, p_popup=p, p_dead=p, p_wrong=p, seed=spec["seed"]).set_components(embed=embed)
    agent.fit(train, seed=1000 * spec["seed"])
    res = {**agent.evaluate(test, seed=1000 * spec["seed"] + 500), "variant": spec["variant"], "seed": spec["seed"],
           "fault_rate": spec["faults"], "fit_success": float(np.mean([r["success"] for r in agent.history_]))}
    if spec["variant"] in SECOND_RUN:
        firsts, seconds = [], []
        for i, task in enumerate(test):
            fresh = MapleAgent(**params, p_popup=p, p_dead=p, p_wrong=p, seed=spec["seed"])
            fresh.set_components(embed=embed).fit([task], seed=7000 + i)
            firsts.append(fresh.history_[0])
            seconds.append(fresh.evaluate([task], seed=8000 + i))
        res["run1_steps"] = float(np.mean([r["steps"] for r in firsts]))
        res["run1_success"] = float(np.mean([r["success"] for r in firsts]))
        res["run2_steps"] = float(np.mean([r["steps"] for r in seconds]))
        res["run2_success"] = float(np.mean([r["success"] for r in seconds]))
    res["wall_s"] = round(time.time() - t, 1)
    print(spec["key"], {k: round(v, 3) for k, v in res.items() if isinstance(v, float)}, flush=True)
    out.write_text(json.dumps(res))
    return res


def lm_job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(2)
    from anytask.data.appworld import all_tasks
    from anytask.methods.agents import BackboneLM
    from anytask.methods.agents.maple import MapleAgent

    out = Path(spec["work"]) / "lm-actor.json"
    if out.is_file():
        return json.loads(out.read_text())
    tasks = all_tasks()
    order = np.random.default_rng(0).permutation(len(tasks))
    test = [tasks[i] for i in order[14:14 + spec["tasks"]]]
    lm, embed = BackboneLM("smollm2"), _embed()
    res = {}
    for variant in ("full", "no FSM (reactive)"):
        rows = []
        for i, task in enumerate(test):
            before = (lm.stats.total_calls, lm.stats.total_seconds)
            agent = MapleAgent(**{"threshold": spec["threshold"], **VARIANTS[variant]}, seed=0)
            agent.set_components(embed=embed, actor=lm).fit([task], seed=7000 + i)
            second = agent.evaluate([task], seed=8000 + i)
            rows.append({"run1": agent.history_[0], "run2": second, "calls": lm.stats.total_calls - before[0],
                         "seconds": lm.stats.total_seconds - before[1]})
            print("lm", variant, i, rows[-1]["run1"]["success"], rows[-1]["run1"]["steps"], second["steps"],
                  flush=True)
        res[variant] = {"run1_success": float(np.mean([r["run1"]["success"] for r in rows])),
                        "run1_steps": float(np.mean([r["run1"]["steps"] for r in rows])),
                        "run2_success": float(np.mean([r["run2"]["success"] for r in rows])),
                        "run2_steps": float(np.mean([r["run2"]["steps"] for r in rows])),
                        "lm_calls_per_task": float(np.mean([r["calls"] for r in rows])),
                        "lm_seconds_per_task": float(np.mean([r["seconds"] for r in rows])), "tasks": len(rows)}
    out.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict]) -> dict:
    summary = {}
    for faults in FAULTS:
        for v in VARIANTS:
            rows = [j for j in jobs if j["variant"] == v and j["fault_rate"] == faults]
            cell = {"n": len(rows)}
            for k in ("success", "recovery_success", "action_accuracy", "steps", "states", "fit_success",
                      "run1_steps", "run2_steps", "run1_success", "run2_success"):
                vals = [r[k] for r in rows if r.get(k) is not None]
                if vals:
                    cell[k], cell[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
            summary[f"{faults}|{v}"] = cell
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lm-tasks", type=int, default=3, help="tasks for the SmolLM2 actor (0: none)")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-maple-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "maple.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/agents/render.py
    from render import plot_maple

    if args.plot_only:
        return plot_maple(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.time()
    cal = calibrate(work)
    print("calibration", cal, flush=True)
    specs = [{"variant": v, "seed": s, "faults": f, "threshold": cal["threshold"], "work": args.work,
              "key": f"{v.replace(' ', '_').replace('(', '').replace(')', '')}-{f.rstrip('%')}-s{s}"}
             for s in range(args.seeds) for f in FAULTS for v in VARIANTS]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    lm = lm_job({"tasks": args.lm_tasks, "threshold": cal["threshold"], "work": args.work}) if args.lm_tasks else {}
    result = {"benchmark": "maple", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "calibration": cal, "variants": list(VARIANTS), "faults": list(FAULTS), "summary": summarise(jobs),
              "lm_actor": lm, "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot_maple(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
