"""Circuit component reuse on SmolLM2-135M-Instruct: IOI vs Colored Objects (card 29).

    python benchmarks/mechanisms/circuits.py --n 96 --seeds 0,1,2 --out benchmarks/mechanisms/circuits.json

Per seed: fresh prompt sets for both tasks, per-head activation patching (30 layers x 9 heads), the
circuits' overlap at 2 / 5 / 10 % of heads with chance (a random set of the same size), and steering
Colored Objects with the shared heads vs as many random heads (alpha chosen on half the prompts,
accuracy over the 8 colours on the other half). Writes the JSON and a heat map of the seed-mean
effects (PNG) beside it.
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

ROOT = Path(__file__).resolve().parents[2]


def draw_heat_maps(maps: list[tuple[str, np.ndarray, list]], suptitle: str, path: Path) -> None:
    """One (layer x head) panel per ``(title, effects, marked heads)``, diverging colours around 0 (NaN: blank)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4.5 * len(maps), 6), sharey=True)
    for ax, (title, effects, marks) in zip(np.atleast_1d(axes), maps):
        bound = float(np.nanmax(np.abs(effects)))
        im = ax.imshow(effects, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
        for layer, head in marks:
            ax.scatter(head, layer, marker="s", facecolors="none", edgecolors="k", s=80)
        ax.set_title(title)
        ax.set_xlabel("head" + (" (squares: receivers)" if marks else ""))
        fig.colorbar(im, ax=ax, shrink=0.8)
    np.atleast_1d(axes)[0].set_ylabel("layer")
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def heat_map(results: dict, path: Path) -> None:
    maps = [(f"{title}: patching effect", np.mean([np.asarray(r[key]["effects"]) for r in results["runs"]], axis=0), [])
            for key, title in (("ioi", "IOI"), ("colored_objects", "Colored Objects"))]
    draw_heat_maps(maps, f"SmolLM2-135M, mean of {len(results['runs'])} seeds: share of the clean -> corrupted "
                   "logit-difference gap one head's final-token output moves", path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=96, help="prompts per task and seed")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "mechanisms" / "circuits.json"))
    args = p.parse_args(argv)

    from anytask.backbones import get_backbone
    from anytask.methods.mechanisms import make_prompts
    from anytask.methods.mechanisms.circuits import circuit_reuse

    lm = get_backbone("smollm2")
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        start = time.perf_counter()
        ioi, cobj = make_prompts("ioi", args.n, seed), make_prompts("colored_objects", args.n, seed)
        r = circuit_reuse(lm, ioi, cobj, seed=seed, batch_size=args.batch_size, progress=True)
        run = {"seed": seed, "seconds": round(time.perf_counter() - start, 1), "overlaps": r["overlaps"],
               "steer_shared": r["steer_shared"], "steer_random": r["steer_random"]}
        for key, part in (("ioi", r["first"]), ("colored_objects", r["second"])):
            run[key] = {**{k: v for k, v in part.items() if k != "effects"},
                        "effects": np.round(part["effects"], 5).tolist()}
        runs.append(run)
        print(json.dumps({k: v for k, v in run.items() if k not in ("ioi", "colored_objects")}), flush=True)
    out = Path(args.out)
    results = {"command": "python " + " ".join(["benchmarks/mechanisms/circuits.py", *sys.argv[1:]]),
               "backbone": lm.identity, "n": args.n, "runs": runs,
               "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                               "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out.write_text(json.dumps(results, indent=1) + "\n")
    heat_map(results, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
