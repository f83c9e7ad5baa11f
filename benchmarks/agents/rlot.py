"""RL of Thoughts (card 34): the Dueling Double-DQN navigator over logic blocks against fixed strategies, on the
simulated reasoner and on SmolLM2-135M-Instruct actually running the blocks on word problems:

    python benchmarks/agents/rlot.py --out benchmarks/agents/rlot.json

Simulated reasoner: navigators trained with the paper's settings (3000 episodes, module defaults, fixed before the
run) on the ``base`` setting and, for the transfer check, on ``noisy``; each evaluated on 1000 episodes of every
setting (``base``, ``noisy``: more rubric and PRM noise and errors, ``hard``: up to 5 sub-goals) with episode seeds
never used in training, beside the fixed strategies on the same episodes. SmolLM2: the navigators trained on the
simulated ``base`` setting (no training on the LM: the sim-to-LM transfer is the check) and the fixed strategies
run on the same word problems (equal numbers of ``arith``, ``word`` and ``two-step``; greedy decoding), in two
conditions: ``lm`` (SmolLM2 runs the blocks, rates the rubric and judges each step) and ``lm+oracle judge`` (SmolLM2
runs the blocks; the rubric and step reward come from the rule oracle that knows the answer, an upper bound on what
a better self-evaluation could give). Cost: LM calls per problem (exact) and seconds per problem estimated from
the seconds each call kind took when computed in this run (answers are cached on disk, so reruns are free).
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

SETTINGS = ("base", "noisy", "hard")
FIXED = ("random", "direct", "always-reason", "cot", "rule")


def sim_job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.core import io
    from anytask.methods.agents.rlot import POLICIES, Navigator, evaluate_policy

    out = Path(spec["work"]) / f"sim-{spec['train']}-s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    t = time.time()
    nav = Navigator(seed=spec["seed"]).fit(spec["train"])
    fit_s = time.time() - t
    io.save(nav, Path(spec["work"]) / f"nav-{spec['train']}-s{spec['seed']}")
    res = {"train": spec["train"], "seed": spec["seed"], "fit_s": round(fit_s, 1), "params": nav.n_parameters(),
           "curve": [float(x) for x in np.convolve(nav.curve_, np.ones(100) / 100, "valid")[::50]], "eval": {}}
    for setting in SETTINGS:
        ev_seed = 1000 + spec["seed"]  # episodes never seen in training (training seeds are seed * 1_000_003 + ep)
        res["eval"][setting] = {"rlot": _trim(nav.evaluate(setting, spec["episodes"], seed=ev_seed))}
        if spec["train"] == "base":
            for name in FIXED:
                res["eval"][setting][name] = _trim(evaluate_policy(setting, POLICIES[name](spec["seed"]),
                                                                   spec["episodes"], seed=ev_seed))
    print("sim", spec["train"], spec["seed"], {s: round(v["rlot"]["accuracy"], 3) for s, v in res["eval"].items()},
          flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def _trim(ev: dict) -> dict:
    return {k: ev[k] for k in ("accuracy", "steps", "calls", "blocks")}


def lm_job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.core import io
    from anytask.data.reasoning import word_problems
    from anytask.methods.agents import BackboneLM, RoutedLM
    from anytask.methods.agents.rlot import POLICIES, LMReasoner, evaluate_policy, reasoning_oracle

    out = Path(spec["work"]) / f"lm-{spec['condition'].replace('+', '_').replace(' ', '_')}.json"
    if out.is_file():
        return json.loads(out.read_text())
    per = spec["problems"] // 3
    problems = [p for i, fam in enumerate(("arith", "word", "two-step")) for p in word_problems(per, fam, seed=i)]
    lm = BackboneLM("smollm2", cache_dir=Path(spec["work"]) / f"cache-{spec['condition'].split('+')[0]}")
    if spec["condition"] != "lm":
        oracle = reasoning_oracle(problems)
        lm = RoutedLM({"rubric": oracle, "prm": oracle}, default=lm)
    inner = lm.default if isinstance(lm, RoutedLM) else lm
    env = LMReasoner(problems, lm, max_new_tokens=40)
    policies = {name: POLICIES[name](0) for name in FIXED}
    for s in range(spec["navigators"]):
        policies[f"rlot s{s}"] = io.load(Path(spec["work"]) / f"nav-base-s{s}").act
    res = {"condition": spec["condition"], "problems": len(problems), "policies": {}}
    for name, pol in policies.items():
        before = dict(lm.stats.calls)
        t = time.time()
        ev = evaluate_policy(env, pol)
        kinds = {k: v - before.get(k, 0) for k, v in lm.stats.calls.items() if v - before.get(k, 0)}
        res["policies"][name] = {**_trim(ev), "correct": ev["correct"], "wall_s": round(time.time() - t, 1),
                                 "calls_by_kind": {k: v / len(problems) for k, v in kinds.items()},
                                 "by_family": {f: float(np.mean([c for c, p in zip(ev["correct"], problems)
                                                                 if p.family == f]))
                                               for f in ("arith", "word", "two-step")}}
        print("lm", spec["condition"], name, round(ev["accuracy"], 3), round(ev["steps"], 2), flush=True)
    per_call = {**inner.stats.seconds_per_call(), **lm.stats.seconds_per_call()} if isinstance(lm, RoutedLM) \
        else lm.stats.seconds_per_call()
    per_call = {k: v for k, v in per_call.items() if k not in ("rubric", "prm") or spec["condition"] == "lm"}
    for r in res["policies"].values():
        r["est_seconds"] = float(sum(n * per_call.get(k, 0.0) for k, n in r["calls_by_kind"].items()))
    res["seconds_per_call"] = per_call
    res["parse_failures"] = dict(inner.stats.parse_failures)
    out.write_text(json.dumps(res))
    return res


def summarise(sims: list[dict], lms: list[dict]) -> dict:
    summary = {"sim": {}, "transfer": {}, "lm": {}}
    base = [j for j in sims if j["train"] == "base"]
    for setting in SETTINGS:
        cell = {}
        for name in ("rlot",) + FIXED:
            vals = [j["eval"][setting][name]["accuracy"] for j in base]
            steps = [j["eval"][setting][name]["steps"] for j in base]
            cell[name] = {"accuracy": float(np.mean(vals)), "accuracy_sd": float(np.std(vals)),
                          "steps": float(np.mean(steps)), "n": len(vals)}
        summary["sim"][setting] = cell
    for train in sorted({j["train"] for j in sims}):
        for setting in SETTINGS:
            vals = [j["eval"][setting]["rlot"]["accuracy"] for j in sims if j["train"] == train]
            summary["transfer"][f"{train}->{setting}"] = {"accuracy": float(np.mean(vals)),
                                                          "accuracy_sd": float(np.std(vals)), "n": len(vals)}
    for job in lms:
        cell = {}
        navs = [k for k in job["policies"] if k.startswith("rlot")]
        for name, r in job["policies"].items():
            cell[name] = {k: r[k] for k in ("accuracy", "steps", "calls", "est_seconds", "by_family")}
        vals = [job["policies"][k]["accuracy"] for k in navs]
        cell["rlot"] = {"accuracy": float(np.mean(vals)), "accuracy_sd": float(np.std(vals)), "n": len(vals),
                        "steps": float(np.mean([job["policies"][k]["steps"] for k in navs])),
                        "calls": float(np.mean([job["policies"][k]["calls"] for k in navs])),
                        "est_seconds": float(np.mean([job["policies"][k]["est_seconds"] for k in navs]))}
        summary["lm"][job["condition"]] = cell
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5, help="navigators per training setting (simulated reasoner)")
    ap.add_argument("--episodes", type=int, default=1000, help="evaluation episodes per setting")
    ap.add_argument("--problems", type=int, default=18, help="word problems for SmolLM2 (a multiple of 3)")
    ap.add_argument("--navigators", type=int, default=3, help="navigators (seeds 0..n-1) run on SmolLM2")
    ap.add_argument("--no-lm", action="store_true", help="the simulated reasoner only")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-rlot-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "rlot.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/agents/render.py
    from render import plot_rlot

    if args.plot_only:
        return plot_rlot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    t = time.time()
    sim_specs = [{"train": tr, "seed": s, "episodes": args.episodes, "work": args.work}
                 for tr in ("base", "noisy") for s in range(args.seeds)]
    lm_specs = [] if args.no_lm else [{"condition": c, "problems": args.problems, "navigators": args.navigators,
                                       "work": args.work} for c in ("lm", "lm+oracle judge")]
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.procs) as pool:
        sims = pool.map(sim_job, sim_specs, chunksize=1)
        lms = pool.map(lm_job, lm_specs, chunksize=1)
    result = {"benchmark": "rlot", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "episodes": args.episodes, "problems": args.problems, "summary": summarise(sims, lms),
              "sim_jobs": sims, "lm_jobs": lms, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot_rlot(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
