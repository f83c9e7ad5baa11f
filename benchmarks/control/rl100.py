"""RL-100 (card 15) on the push world: success after each stage (imitation, every OPE-gated offline update, online
RL, the one-step distilled policy), the gate's decisions with the OPE estimate beside the measured return, a
deliberately corrupted update per offline iteration (the card's gate test), and latency:

    python benchmarks/control/rl100.py --out benchmarks/control/rl100.json

Environment: ``anytask/Push-v0`` (floating disc pusher, state observations, 80 steps). Demonstrations: 100 scripted
episodes, Gaussian action noise 0.2 / 0.6 / 1.2 in turn (mixed quality). ``RL100``'s defaults, fixed before the run
(K = 10 denoising steps, exploration noise 0.1, 2,000 imitation steps; 5 offline iterations of one PPO candidate
(100 steps, clip 0.2, imitation weight 0.5 on successful episodes), FQE with 1,000 steps, 64 rollouts added per
iteration; 8 online PPO iterations of 64 episodes; 2,000 distillation steps). Every policy is scored on the same
500 held-out episodes per seed (seeds never used in training). Baseline in the same process: a plain MLP regression
policy (MSE behaviour cloning, 256-256 Mish, tanh, 3,000 steps of Adam 1e-3) on the same demonstrations.
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


def mse_bc(model, demos: dict, seed: int, episodes: int, eval_seed: int) -> float:
    """Success of an MSE-regression policy on the demonstrations (the simplest imitation baseline)."""
    import torch

    from anytask.methods.control.rl100 import mlp, push_features

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    s, a = push_features(torch.from_numpy(demos["s"])), torch.from_numpy(demos["a"])
    net = mlp(s.shape[1], 2, 256)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(3000):
        i = torch.randint(0, len(a), (256,), generator=gen)
        loss = ((torch.tanh(net(s[i])) - a[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        ep = model._episodes(lambda x, sim: torch.tanh(net(push_features(x))), episodes, eval_seed)
    return float(ep["success"].mean())


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.methods.control.rl100 import RL100

    out = Path(spec["work"]) / f"s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    seed, episodes = spec["seed"], spec["episodes"]
    ev = seed * 1000 + 999_000  # RL100's own evaluation episodes
    t = time.time()
    model = RL100(seed=seed, gate_check=True, eval_episodes=episodes).fit("anytask/Push-v0")
    fit_s = time.time() - t
    res = {"seed": seed, "fit_s": round(fit_s, 1), "history": model.history_, **model.latency(),
           "mse_bc_success": mse_bc(model, model._demos(int(model.demos), seed), seed, episodes, ev)}
    print(spec["seed"], [(h["stage"], h.get("success")) for h in res["history"]], res["mse_bc_success"], flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict]) -> dict:
    stages = {}
    for j in jobs:
        for h in j["history"]:
            key = h["stage"] if h["stage"] != "offline" else f"offline {h['iter']}"
            stages.setdefault(key, []).append(h)
    out = {}
    for key, rows in stages.items():
        cell = {"n": len(rows)}
        for k in ("success", "return", "ope", "ope_old", "corrupted_success", "corrupted_ope"):
            vals = [r[k] for r in rows if r.get(k) is not None]
            if vals:
                cell[k], cell[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
        for k in ("accepted", "corrupted_rejected"):
            vals = [r[k] for r in rows if k in r]
            if vals:
                cell[k] = int(sum(vals))
        out[key] = cell
    offline = [h for j in jobs for h in j["history"] if h["stage"] == "offline"]
    ope, true = [h["ope"] for h in offline], [h["return"] for h in offline]
    for k in ("mse_bc_success", "multi_step_ms", "one_step_ms", "fit_s"):
        vals = [j[k] for j in jobs]
        out[k], out[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
    if len(offline) > 2:
        from scipy.stats import spearmanr

        out["ope_vs_return_spearman"] = float(spearmanr(ope, true).statistic)
    out["gate_accepted"] = int(sum(h["accepted"] for h in offline))
    out["gate_proposed"] = len(offline)
    out["corrupted_rejected"] = int(sum(h.get("corrupted_rejected", False) for h in offline))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-rl100-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "rl100.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/control/render.py
    from render import plot_rl100

    if args.plot_only:
        return plot_rl100(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    specs = [{"seed": s, "episodes": args.episodes, "work": args.work} for s in range(args.seeds)]
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "rl100-push", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "episodes": args.episodes, "summary": summarise(jobs), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot_rl100(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
