"""The task-conditioned codebook bottleneck in grid-world object-goal navigation (card 33): EmbCLIP's pipeline with
and without the codebook (and with frozen random codes), success / SPL / SEL, convergence over training rounds,
zero-shot transfer to a new colour palette, and the paper's linear probes:

    python benchmarks/control/codebook.py --out benchmarks/control/codebook.json

Environment: ``anytask/ObjectNav-v0`` (8 x 8 room, 4 inner walls, 6 objects of 5 colours, 5 x 5 egocentric view,
60 steps). Policies: the module's defaults (BC from the shortest-path expert, then 3 DAgger rounds of 200
episodes, 300 updates of 32 episodes after each round, Adam 1e-3; K = 256 codes of 10 dims, dropout 0.1), fixed
before the run, the same for every variant. Evaluation: 300 held-out episodes (seeds never used in training), and
the same on palette 3 (the object colours rotated: a new "texture", no tuning). Probes: on the GRU inputs recorded
along the evaluation episodes, logistic regression (object presence: each colour in view, balanced accuracy averaged
over the 5 colours; goal visible: balanced accuracy) and ridge (shortest-path distance to the goal: R^2), fitted on
the first half of the episodes and scored on the second half; features standardised on the fitting half.
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

VARIANTS = {"embclip": ("embclip", {}), "codebook": ("codebook", {}), "random codes": ("codebook",
                                                                                       {"codebook": "random"})}


def probes(feats: np.ndarray, infos: list[dict], episode: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import balanced_accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fit = episode < np.median(episode)
    presence = np.array([i["visible_types"] for i in infos])
    goal_visible = np.array([i["goal_visible"] for i in infos])
    dist = np.array([i["distance"] for i in infos])
    out = {}

    def clf(y):
        if len(set(y[fit])) < 2 or len(set(y[~fit])) < 2:
            return None
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats[fit], y[fit])
        return float(balanced_accuracy_score(y[~fit], m.predict(feats[~fit])))

    scores = [s for s in (clf(presence[:, k]) for k in range(presence.shape[1])) if s is not None]
    out["object_presence"] = float(np.mean(scores))
    out["goal_visible"] = clf(goal_visible)
    ok = np.isfinite(dist)
    m = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(feats[fit & ok], dist[fit & ok])
    out["goal_distance_r2"] = float(r2_score(dist[~fit & ok], m.predict(feats[~fit & ok])))
    return out


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.methods.control import POLICIES

    out = Path(spec["work"]) / f"{spec['key']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    name, params = VARIANTS[spec["variant"]]
    t = time.time()
    pol = POLICIES.get(name)(seed=spec["seed"], **params).fit("anytask/ObjectNav-v0")
    fit_s = time.time() - t
    ev = pol.evaluate(episodes=spec["episodes"], record=True)
    shifted = pol.evaluate(episodes=spec["episodes"], palette=3)
    res = {"variant": spec["variant"], "seed": spec["seed"], "fit_s": round(fit_s, 1), "history": pol.history_,
           **{k: ev[k] for k in ("success", "spl", "sel", "steps")}, "perplexity": ev.get("perplexity"),
           "palette_success": shifted["success"], "palette_sel": shifted["sel"],
           "probes": {"gru_input": probes(ev["Z"], ev["infos"], ev["episode"])}}
    if spec["variant"] != "embclip":
        res["probes"]["before_codebook"] = probes(ev["E"], ev["infos"], ev["episode"])
    print(spec["key"], {k: res[k] for k in ("success", "spl", "sel", "palette_success")}, res["probes"], flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-codebook-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "codebook.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/control/render.py
    from render import plot_codebook

    if args.plot_only:
        return plot_codebook(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
    specs = [{"variant": v, "seed": s, "episodes": args.episodes, "work": args.work, "key": f"{v}-s{s}"}
             for s in range(args.seeds) for v in VARIANTS]
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    summary = {}
    for v in VARIANTS:
        rows = [j for j in jobs if j["variant"] == v]
        cell = {}
        for k in ("success", "spl", "sel", "palette_success", "fit_s"):
            vals = [r[k] for r in rows]
            cell[k], cell[k + "_sd"] = float(np.mean(vals)), float(np.std(vals))
        if rows[0]["perplexity"] is not None:
            cell["perplexity"] = float(np.mean([r["perplexity"] for r in rows]))
        for where in rows[0]["probes"]:
            for probe in rows[0]["probes"][where]:
                vals = [r["probes"][where][probe] for r in rows if r["probes"][where][probe] is not None]
                cell[f"{where}|{probe}"] = float(np.mean(vals))
                cell[f"{where}|{probe}_sd"] = float(np.std(vals))
        cell["n"] = len(rows)
        summary[v] = cell
    result = {"benchmark": "codebook-objectnav", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "episodes": args.episodes, "variants": list(VARIANTS), "summary": summary, "jobs": jobs,
              "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))
    plot_codebook(result, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
