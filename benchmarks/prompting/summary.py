"""Base-to-novel table from benchmarks/prompting/base_to_novel.json (mean ± std over seeds, %).

    python benchmarks/prompting/summary.py [benchmarks/prompting/base_to_novel.json]
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def ms(v) -> str:
    v = [x for x in v if x is not None]
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" if v else "–"


def main(path="benchmarks/prompting/base_to_novel.json") -> None:
    r = json.loads(Path(path).read_text())
    cells = defaultdict(lambda: defaultdict(list))
    for row in r["rows"]:
        key = (row["task"], row["shots"], row["method"])
        for m in ("base", "novel", "hm", "seconds"):
            cells[key][m].append(row.get(m))
    lines = ["| task | k per base class | method | base | novel | HM | adaptation seconds |", "|---|---|---|---|---|---|---|"]
    for (task, k, method), c in cells.items():
        secs = f"{np.mean(c['seconds']):.1f}" if method != "zero_shot" else "0"
        lines.append(f"| {task} | {k} | {method} | {ms(c['base'])} | {ms(c['novel'])} | {ms(c['hm'])} | {secs} |")
    text = "\n".join(lines)
    print(text)
    Path(path).with_suffix(".md").write_text(f"<!-- {r['command']} -->\n{text}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
