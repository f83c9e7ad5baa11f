"""RLQ (card 11) in its own setting at toy scale: clothes-changing re-identification of low-quality queries.

    python benchmarks/distill/rlq_image.py --out benchmarks/distill/rlq_image.json

Data (``anytask.data.stickfigures``, fixed before the run): 100 training identities and 20 disjoint test identities
per seed, 2 sessions (clothes redrawn) x 8 poses each, 64 x 32 colour; external unlabelled set for TAD: 2,000
images of stacked MNIST digits (``../shared/data/vision/mnist_test.npz``; procedural shapes without it). Test
protocol: gallery = the test identities' session-0 images, clean; queries = their session-1 images (other
clothes), degraded (``mixed``: blur, pixelation or motion blur per image), and the same queries clean for
reference. Variants, one process per seed, same data and initial seed: ``baseline`` (CE + batch-hard triplet),
``+CAP``, ``+TAD``, ``RLQ`` (CAP + TAD) and ``augment`` (the baseline with half of every batch degraded: the simple
alternative that knows the degradations). 600 re-identification steps each (TAD variants also take 600 TAD
steps, alternating). Reported: rank-1 and mAP for low-quality and clean queries, the clean / degraded feature
distance on test images (mean 1 - cos), and pose leakage (3-fold CV accuracy of a logistic regression predicting
the test images' pose cluster from their identity features; the majority-class rate beside it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

VARIANTS = {"baseline": dict(tad=False, cap=False), "+CAP": dict(tad=False, cap=True),
            "+TAD": dict(tad=True, cap=False), "RLQ": dict(tad=True, cap=True),
            "augment": dict(tad=False, cap=False, augment=True)}


def pose_leakage(features: np.ndarray, clusters: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    return float(cross_val_score(LogisticRegression(max_iter=2000), features, clusters, cv=3).mean())


def run_seed(seed: int, variants: list[str], steps: int, data_root: str | None) -> list[dict]:
    import torch
    from sklearn.cluster import KMeans

    from anytask.data.stickfigures import degrade, external_images, stick_figures
    from anytask.methods.distill.rlq_reid import RLQReID, reid_metrics

    torch.set_num_threads(1)
    train = stick_figures(100, 2, 8, seed=seed)
    test = stick_figures(20, 2, 8, seed=100 + seed, first_id=1000)
    external = external_images(2000, seed=seed, data_root=data_root)
    lq = degrade(test["images"], "mixed", seed=7 + seed)
    gal, qry = test["sessions"] == 0, test["sessions"] == 1
    clusters = KMeans(4, n_init=10, random_state=seed).fit(train["pose"]).predict(test["pose"])
    rows = []
    for name in variants:
        t0 = time.perf_counter()
        m = RLQReID(steps=steps, seed=seed, **VARIANTS[name]).fit(
            train["images"], train["ids"], pose=train["pose"], gender=train["gender"], external=external)
        fit = time.perf_counter() - t0
        clean, dirty = m.transform(test["images"]), m.transform(lq)
        low = reid_metrics(dirty[qry], test["ids"][qry], clean[gal], test["ids"][gal])
        high = reid_metrics(clean[qry], test["ids"][qry], clean[gal], test["ids"][gal])
        rows.append({"seed": seed, "variant": name, "lq_rank1": low["rank1"], "lq_mAP": low["mAP"],
                     "hq_rank1": high["rank1"], "hq_mAP": high["mAP"],
                     "hq_lq_distance": float(np.mean(1 - (clean * dirty).sum(1))),
                     "pose_leakage": pose_leakage(clean, clusters),
                     "pose_majority": float(np.bincount(clusters).max() / len(clusters)),
                     "fit_seconds": round(fit, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for v in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == v]
        out[v] = {"seeds": len(rs)}
        for k in ("lq_rank1", "lq_mAP", "hq_rank1", "hq_mAP", "hq_lq_distance", "pose_leakage", "pose_majority",
                  "fit_seconds"):
            vals = [r[k] for r in rs]
            out[v][k] = {"mean": float(np.mean(vals)), "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["summary"]
    names = list(s)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for j, (key, label) in enumerate([("lq_rank1", "low-quality queries"), ("hq_rank1", "clean queries")]):
        ax.bar(x + 0.4 * j - 0.2, [100 * s[n][key]["mean"] for n in names], 0.4,
               yerr=[100 * s[n][key]["sd"] for n in names], label=label, capsize=3)
    ax.axhline(100 / 20, color="k", lw=0.8, ls=":", label="chance (20 identities)")
    ax.set_xticks(x, names)
    ax.set_ylabel("rank-1 (%), clothes changed")
    ax.set_title("Synthetic clothes-changing ReID, 3 seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    ap.add_argument("--out", default="benchmarks/distill/rlq_image.json")
    args = ap.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    variants = args.variants.split(",")
    for seed in range(args.seeds):
        todo = [v for v in variants if not any(r["seed"] == seed and r["variant"] == v for r in rows)]
        if todo:
            rows += run_seed(seed, todo, args.steps, args.data_root)
        result = {"benchmark": "distill-rlq-image", "command": " ".join(["python"] + sys.argv), "steps": args.steps,
                  "seeds": list(range(args.seeds)), "rows": rows, "summary": summarise(rows),
                  "wall_seconds": round(time.perf_counter() - start, 1),
                  "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
        out.write_text(json.dumps(result, indent=1))
    try:
        plot(result, out.with_suffix(".png"))
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
    for k, v in result["summary"].items():
        print(f"{k:10s} LQ rank-1 {v['lq_rank1']['mean']:.3f} ± {v['lq_rank1']['sd']:.3f}  "
              f"HQ {v['hq_rank1']['mean']:.3f}  dist {v['hq_lq_distance']['mean']:.3f}  "
              f"pose leak {v['pose_leakage']['mean']:.3f}")


if __name__ == "__main__":
    main()
