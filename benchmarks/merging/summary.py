"""Summarise benchmarks/merging/tasks.json: means over tasks, then mean ± std over seeds."""

import json
import sys
from collections import defaultdict

import numpy as np


def main(path="benchmarks/merging/tasks.json") -> None:
    r = json.load(open(path))
    cells = defaultdict(list)  # (mode, what) -> per-seed values
    for row in r["rows"]:
        mode = row.get("mode", "-")
        if row["kind"] in ("zero_shot", "single_task", "addition", "ties", "dare_linear"):
            cells[(mode, row["kind"])].append(np.mean(list(row["acc"].values())))
        if row["kind"] == "addition":
            cells[(mode, "addition normalised")].append(np.mean(list(row["normalized"].values())))
            cells[(mode, "addition lambda")].append(row["lam"])
        if row["kind"] == "negation":
            cells[(mode, f"negation lambda={row['lam']} target")].append(row["target_acc"])
            cells[(mode, f"negation lambda={row['lam']} target zero-shot")].append(row["target_zero_shot"])
            cells[(mode, f"negation lambda={row['lam']} control kept")].append(row["control_kept"])
    print(f"{r['seeds_done']} seed(s), tasks {', '.join(r['tasks'])}, {r['steps']} steps")
    for (mode, what), v in cells.items():
        print(f"| {mode} | {what} | {np.mean(v):.3f} ± {np.std(v):.3f} (n={len(v)}) |")


if __name__ == "__main__":
    main(*sys.argv[1:])
