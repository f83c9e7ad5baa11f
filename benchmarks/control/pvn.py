"""Proto-Value Networks on MinAtar (card 38): a linear Q-function on frozen PVN features against DQN from scratch at
the same budget of reward interactions, and against linear Q-functions on random and reconstruction-trained
features of the same torso:

    python benchmarks/control/pvn.py --out benchmarks/control/pvn.json                 # games x seeds
    python benchmarks/control/pvn.py --sweep --out benchmarks/control/pvn_sweep.json   # tasks x width, Breakout

Per game and seed: 200k transitions of the uniform random policy (the stand-in for DQN-Replay; no reward is read
by the encoders), PVN (T = 32 random-network indicators, p = 1 %, width 256) and the autoencoder each trained for
10k steps at batch 128 (CPU time; the card's plan says ~20k), the random torso untrained. Then each learner gets the
same budget of ``--budget`` environment steps with the reward (double DQN, 3-step returns, epsilon 1 -> 0.01 over
the first 10 %, one update of 32 every 4 steps, target copy every 1,000 steps, Adam 2.5e-4; the module's defaults,
fixed before any run, the same for every learner). Scores: mean return of the last 10 % of training episodes, and
of 20 evaluation episodes of the greedy policy (epsilon 0.001). Jobs run in ``--procs`` processes with one thread
each; each job's result is kept under ``--work`` so an interrupted run resumes. The sweep reuses the main run's
T = 32, width 256 cells (the same computation) when they are under ``--work``.
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

ENCODERS = ("pvn", "reconstruction", "random")
LEARNERS = ("pvn+linear", "reconstruction+linear", "random+linear", "dqn")


def _learn(name: str, encoder, env: str, seed: int, budget: int) -> dict:
    from anytask.methods.control import LEARNERS as REG

    t = time.time()
    agent = (REG.get("dqn")(steps=budget, seed=seed) if encoder is None else
             REG.get("linear_q")(encoder=encoder, steps=budget, seed=seed)).fit(env)
    train_s = time.time() - t
    curve = np.array(agent.curve_, dtype=float)
    last = curve[curve[:, 0] > 0.9 * budget, 1] if len(curve) else np.array([])
    ev = agent.evaluate(episodes=20, seed=10_000 + seed)
    bins = np.linspace(0, budget, 21)
    binned = []
    for a, b in zip(bins[:-1], bins[1:]):
        inside = (curve[:, 0] > a) & (curve[:, 0] <= b) if len(curve) else np.zeros(0, bool)
        binned.append(float(curve[inside, 1].mean()) if inside.any() else None)
    return {"learner": name, "last10": float(last.mean()) if len(last) else None, "eval": ev["mean"],
            "eval_sd": ev["std"], "episodes": len(curve), "train_s": round(train_s, 1),
            "steps_per_s": round(budget / train_s, 1), "curve": binned}


def job(spec: dict) -> dict:
    """One (game, seed[, tasks, width]) cell: collect, train the encoders, run every learner."""
    import torch

    torch.set_num_threads(1)
    from anytask.data.envs import collect
    from anytask.methods.control import ENCODERS as ENC

    out = Path(spec["work"]) / f"{spec['key']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    same = Path(spec["work"]) / f"{spec.get('same_as', '')}.json"
    if spec.get("same_as") and same.is_file():  # the main run's cell with these exact settings: reuse that part
        main = json.loads(same.read_text())
        return {**{k: v for k, v in spec.items() if k != "work"}, "reused": spec["same_as"],
                "random_policy_return": main["random_policy_return"],
                "encoders": {k: main["encoders"][k] for k in spec["encoders"]},
                "learners": {k: main["learners"][k] for k in spec["learners"]}}
    env, seed = f"MinAtar/{spec['game']}-v1", spec["seed"]
    t = time.time()
    data = collect(env, spec["transitions"], seed=seed)
    res = {**{k: v for k, v in spec.items() if k != "work"}, "collect_s": round(time.time() - t, 1),
           "random_policy_return": float(data.episode_returns.mean()), "encoders": {}, "learners": {}}
    encoders = {}
    for name in spec["encoders"]:
        t = time.time()
        if name == "pvn":
            enc = ENC.get("pvn")(n_tasks=spec["tasks"], width=spec["width"], steps=spec["enc_steps"],
                                 batch_size=128, seed=seed).fit(data)
            extra = {"fire_rate": float(enc.fire_rate(data.obs[:50_000]).mean())}
        elif name == "reconstruction":
            enc = ENC.get("reconstruction")(width=spec["width"], steps=spec["enc_steps"], batch_size=128,
                                            seed=seed).fit(data)
            extra = {}
        else:
            enc = ENC.get("random")(width=spec["width"], seed=seed).fit(data)
            extra = {}
        encoders[name] = enc
        res["encoders"][name] = {"train_s": round(time.time() - t, 1), "final": enc.history_[-1], **extra}
    for name in spec["learners"]:
        enc = None if name == "dqn" else encoders[name.split("+")[0]]
        res["learners"][name] = _learn(name, enc, env, seed, spec["budget"])
        print(f"{spec['key']} {name}: last10 {res['learners'][name]['last10']} eval {res['learners'][name]['eval']}",
              flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict], group: tuple[str, ...]) -> dict:
    cells: dict[str, dict[str, list]] = {}
    for j in jobs:
        for name, r in j["learners"].items():
            key = "|".join(str(j[g]) for g in group) + f"|{name}"
            c = cells.setdefault(key, {"last10": [], "eval": [], "steps_per_s": [], "train_s": []})
            for k in c:
                if r[k] is not None:
                    c[k].append(r[k])
    return {k: {**{f"{m}": float(np.mean(v[m])) for m in v}, **{f"{m}_sd": float(np.std(v[m])) for m in
                                                                  ("last10", "eval")}, "n": len(v["eval"])}
            for k, v in cells.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games", default="Breakout,SpaceInvaders,Asterix")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=50_000)
    ap.add_argument("--transitions", type=int, default=200_000)
    ap.add_argument("--enc-steps", type=int, default=10_000)
    ap.add_argument("--sweep", action="store_true", help="PVN tasks x width on the first game instead, with random "
                    "features of each width")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-pvn-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "pvn.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/control/render.py
    if args.plot_only:
        from render import plot

        return plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    games = args.games.split(",")
    base = dict(transitions=args.transitions, enc_steps=args.enc_steps, budget=args.budget, work=args.work)
    specs = []
    if args.sweep:
        for seed in range(args.seeds):
            for tasks, width in ((8, 256), (32, 256), (128, 256), (32, 64), (32, 1024)):
                specs.append({**base, "game": games[0], "seed": seed, "tasks": tasks, "width": width,
                              "encoders": ["pvn"], "learners": ["pvn+linear"],
                              "key": f"sweep-{games[0]}-s{seed}-T{tasks}-w{width}-b{args.budget}",
                              "same_as": f"{games[0]}-s{seed}-b{args.budget}" if (tasks, width) == (32, 256) else ""})
            for width in (64, 256, 1024):  # the control: random features of the same width
                specs.append({**base, "game": games[0], "seed": seed, "tasks": 0, "width": width,
                              "encoders": ["random"], "learners": ["random+linear"],
                              "key": f"sweep-{games[0]}-s{seed}-random-w{width}-b{args.budget}",
                              "same_as": f"{games[0]}-s{seed}-b{args.budget}" if width == 256 else ""})
        group = ("game", "tasks", "width")
    else:
        for seed in range(args.seeds):
            for game in games:
                specs.append({**base, "game": game, "seed": seed, "tasks": 32, "width": 256,
                              "encoders": list(ENCODERS), "learners": list(LEARNERS),
                              "key": f"{game}-s{seed}-b{args.budget}"})
        group = ("game",)
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "pvn-sweep" if args.sweep else "pvn-minatar", "command": " ".join(["python"] + sys.argv),
              "games": games if not args.sweep else games[:1], "seeds": args.seeds, "budget": args.budget,
              "transitions": args.transitions, "enc_steps": args.enc_steps, "group": list(group),
              "summary": summarise(jobs, group), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    try:
        from render import plot

        plot(result, Path(args.out).with_suffix(".png"))
    except ImportError:
        pass


if __name__ == "__main__":
    main()
