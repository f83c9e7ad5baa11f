"""LMA3 (card 06): the autotelic loop against its ablations in Mini-CookingWorld, and SmolLM2 in the loop:

    python benchmarks/agents/lma3.py --out benchmarks/agents/lma3.json

Rule-based components (fixed before the run; module defaults: 2000 episodes, 8 exploration steps after the replay,
p_practice 0.2), 3 seeds: full loop; no relabeler (only the pursued goal is credited); no composition (the
generator proposes only atomic goals about what has been seen); random goals (random strings of the goal grammar).
Metrics: repertoire growth, distinct goals mastered (atomic / composite), coverage of the 15 held-out goals
(``EVAL_GOALS``: "and" compositions and chains the generator never proposes) by replaying the stored sequences.
SmolLM2-135M-Instruct in the loop (seed 0, fewer episodes: every call is ~0.3–4 s): as the reward function (the
relabeler and generator stay rule-based), and as the relabeler (its lines parsed strictly; unparsable answers
counted and answered by the rules); beside the rule loop over the same episodes. The judge's precision is the share
of repertoire entries whose stored sequence really achieves the goal (checked by replay).
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

VARIANTS = {"full": {}, "no relabeler": {"relabel": False}, "no composition": {"compose": False},
            "random goals": {"goals": "random"}}


def _stats(agent) -> dict:
    from anytask.data.cooking import holds, split_goal
    from anytask.methods.agents.lma3 import replay

    reps = agent.repertoire_
    true = [holds(g, replay(seq)[1]) for g, seq in reps.items()]
    return {"mastered": len(reps), "atomic": sum(split_goal(g)[0] == "atomic" for g in reps),
            "composite": sum(split_goal(g)[0] != "atomic" for g in reps), "coverage": agent.coverage(),
            "precision": float(np.mean(true)) if true else None,
            "curve": [int(x) for x in agent.curve_[:: max(1, len(agent.curve_) // 50)]]}


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.methods.agents.lma3 import LMA3Agent

    out = Path(spec["work"]) / f"{spec['variant'].replace(' ', '_')}-s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    t = time.time()
    agent = LMA3Agent(episodes=spec["episodes"], seed=spec["seed"], **VARIANTS[spec["variant"]]).fit()
    res = {"variant": spec["variant"], "seed": spec["seed"], **_stats(agent), "fit_s": round(time.time() - t, 1)}
    print(spec["variant"], spec["seed"], {k: v for k, v in res.items() if k != "curve"}, flush=True)
    out.write_text(json.dumps(res))
    return res


def lm_job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(2)
    from anytask.methods.agents import BackboneLM, RoutedLM
    from anytask.methods.agents.lma3 import LMA3Agent, cooking_oracle

    out = Path(spec["work"]) / f"lm-{spec['part']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    lm = BackboneLM("smollm2", cache_dir=Path(spec["work"]) / "lm-cache")
    routed = RoutedLM({spec["part"]: lm}, default=cooking_oracle(0))
    t = time.time()
    agent = LMA3Agent(episodes=spec["episodes"], seed=0).set_components(lm=routed).fit()
    res = {"part": spec["part"], "episodes": spec["episodes"], **_stats(agent), "wall_s": round(time.time() - t, 1),
           "lm_calls": lm.stats.total_calls, "lm_seconds": round(lm.stats.total_seconds, 1),
           "parse_failures": dict(routed.stats.parse_failures)}
    rule = LMA3Agent(episodes=spec["episodes"], seed=0).fit()
    res["rule_same_episodes"] = _stats(rule)
    print("lm", spec["part"], {k: v for k, v in res.items() if k not in ("curve", "rule_same_episodes")},
          flush=True)
    out.write_text(json.dumps(res))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=2000)
    ap.add_argument("--judge-episodes", type=int, default=50, help="episodes with SmolLM2 as the reward (0: none)")
    ap.add_argument("--relabel-episodes", type=int, default=40, help="episodes with SmolLM2 as the relabeler")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-lma3-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "lma3.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/agents/render.py
    from render import plot_lma3

    if args.plot_only:
        return plot_lma3(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"variant": v, "seed": s, "episodes": args.episodes, "work": args.work}
             for s in range(args.seeds) for v in VARIANTS]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    lm = [lm_job({"part": part, "episodes": n, "work": args.work})
          for part, n in (("reward", args.judge_episodes), ("relabel", args.relabel_episodes)) if n]
    summary = {}
    for v in VARIANTS:
        rows = [j for j in jobs if j["variant"] == v]
        cell = {"n": len(rows)}
        for k in ("mastered", "atomic", "composite", "coverage", "precision", "fit_s"):
            vals = [r[k] for r in rows]
            cell[k], cell[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
        summary[v] = cell
    result = {"benchmark": "lma3", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "episodes": args.episodes, "variants": list(VARIANTS), "summary": summary, "jobs": jobs, "lm": lm,
              "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot_lma3(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
