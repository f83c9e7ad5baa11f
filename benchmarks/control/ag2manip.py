"""Ag2Manip (card 08) on the push world: is a reward from agent-masked "human" videos body-independent, and do the
agent-agnostic visual and action representations let a robot arm learn to push under a small budget?

    python benchmarks/control/ag2manip.py --out benchmarks/control/ag2manip.json

Per seed: 150 scripted episodes of the L-shaped pusher (the "human"; action noise 0.5) as frames, masked and
unmasked; a ``time_contrastive`` encoder with VIP's objective on each (width 64, 1,500 steps, batch 64 episodes; the
settings of a first check of the objective on other seeds' videos, fixed before the run).
**Invariance**: 30 held-out episodes' states drawn with the L pusher, the disc and the 2-link arm; the correlation of
each encoder's reward ``-||phi(o) - phi(g)||`` between the L and arm drawings, and its Spearman correlation with the
true negative object-goal distance. **Policies**: the robot is the arm; CEM (30 iterations x 32 candidates x 4
episodes, 60 steps, reward read every 5 steps: the same budget for every variant) with reward = masked encoder,
unmasked encoder, or the true distance (oracle), in proxy or native action space; success of the arm on 300 held-out
episodes. Baseline in the same process: the oracle-reward variants (the strongest reward a learner could get).
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

REWARDS = ("masked", "pixels", "oracle")
ACTIONS = ("proxy", "native")


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from scipy.stats import spearmanr

    from anytask.data.pushworld import PushSim, push_videos, render_states
    from anytask.methods.control.ag2manip import Ag2Manip
    from anytask.methods.control.time_contrastive import TimeContrastive, goal_reward

    out = Path(spec["work"]) / f"s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    seed = spec["seed"]
    res = {"seed": seed, "invariance": {}, "policies": {}, "encoder_s": {}}
    encoders = {}
    _, test_states = push_videos(30, body="L", obs="masked", seed=10_000 + seed)
    sim = PushSim(len(test_states), "disc")
    sim.set(test_states[:, 0:2], test_states[:, 2:4], test_states[:, 4:6])
    goals, true = sim.goal_frames(), -sim.distance()
    for view in ("masked", "pixels"):
        t = time.time()
        data, _ = push_videos(150, body="L", obs=view, seed=seed)
        enc = TimeContrastive(objective="vip", steps=1500, batch_size=64, seed=seed).fit(data)
        res["encoder_s"][view] = round(time.time() - t, 1)
        encoders[view] = enc
        r = {b: goal_reward(enc, render_states(test_states, b, masked=view == "masked"), goals)
             for b in ("L", "disc", "arm")}
        res["invariance"][view] = {
            "corr_L_arm": float(np.corrcoef(r["L"], r["arm"])[0, 1]),
            "corr_L_disc": float(np.corrcoef(r["L"], r["disc"])[0, 1]),
            **{f"spearman_true_{b}": float(spearmanr(r[b], true).statistic) for b in r},
            "final_loss": enc.history_[-1]["loss"]}
    for reward in REWARDS:
        for action in ACTIONS:
            t = time.time()
            pol = Ag2Manip(encoder=encoders.get(reward), view="masked" if reward == "oracle" else reward,
                           action=action, seed=seed).fit("anytask/Push-v0", body="arm")
            ev = pol.evaluate(episodes=spec["episodes"])
            res["policies"][f"{reward}|{action}"] = {**ev, "fit_s": round(time.time() - t, 1),
                                                     "fitness": [h["fitness"] for h in pol.history_]}
            print(seed, reward, action, ev, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def _ms(vals) -> tuple[float, float]:
    return float(np.mean(vals)), float(np.std(vals))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-ag2manip-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "ag2manip.json"))
    args = ap.parse_args()
    specs = [{"seed": s, "episodes": args.episodes, "work": args.work} for s in range(args.seeds)]
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    summary = {"invariance": {}, "policies": {}}
    for view in ("masked", "pixels"):
        cell = {}
        for k in jobs[0]["invariance"][view]:
            cell[k], cell[k + "_sd"] = _ms([j["invariance"][view][k] for j in jobs])
        cell["encoder_s"] = float(np.mean([j["encoder_s"][view] for j in jobs]))
        summary["invariance"][view] = cell
    for key in jobs[0]["policies"]:
        cell = {"n": len(jobs)}
        for k in ("success", "final_distance", "fit_s"):
            cell[k], cell[k + "_sd"] = _ms([j["policies"][key][k] for j in jobs])
        summary["policies"][key] = cell
    result = {"benchmark": "ag2manip-push", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "episodes": args.episodes, "summary": summary, "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
