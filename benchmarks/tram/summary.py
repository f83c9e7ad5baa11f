"""OOD table from benchmarks/tram/ood.json (accuracy %, mean ± std over seeds).

    python benchmarks/tram/summary.py [benchmarks/tram/ood.json]
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def render(r: dict) -> str:
    acc, secs, passes = defaultdict(lambda: defaultdict(list)), defaultdict(list), {}
    for row in r["rows"]:
        for t, a in row["acc"].items():
            acc[row["optimizer"]][t].append(a)
        if row.get("seconds_per_step"):
            secs[row["optimizer"]].append(row["seconds_per_step"])
            passes[row["optimizer"]] = row["passes"]
    tasks = ["sst2", "rotten_tomatoes", "imdb"]
    lines = ["| optimiser | SST-2 (in domain) | rotten_tomatoes | imdb | OOD mean | seconds / step | passes / step |",
             "|---|---|---|---|---|---|---|"]
    for opt, a in acc.items():
        cols = [f"{100 * np.mean(a[t]):.1f} ± {100 * np.std(a[t]):.1f}" for t in tasks]
        ood = np.mean([a["rotten_tomatoes"], a["imdb"]], axis=0)
        s = f"{np.mean(secs[opt]):.2f}" if secs.get(opt) else "–"
        lines.append(f"| {opt} | {' | '.join(cols)} | {100 * ood.mean():.1f} ± {100 * ood.std():.1f} | {s} | "
                     f"{passes.get(opt, '–')} |")
    return "\n".join(lines)


def main(path="benchmarks/tram/ood.json") -> None:
    print(render(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main(*sys.argv[1:])
