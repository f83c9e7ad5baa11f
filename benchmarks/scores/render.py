"""Markdown tables of the score-head result files, for benchmarks/docs.py (the one writer of results pages)."""

from __future__ import annotations

import numpy as np


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


LABELS = {"zero_shot_1g": "anchors, zero-shot, 1 group", "zero_shot_3g": "anchors, zero-shot, 3 groups",
          "scales_3g": "levels only, 3 groups", "adapter_1g": "adapter + levels, 1 group",
          "adapter_3g": "adapter + levels, 3 groups", "adapter_3g_cv": "adapter + levels, 3 groups, lr by CV",
          "ridge": "**ridge** (baseline)", "linear_probe": "linear probe (expected value)"}


def uniqa(r: dict) -> str:
    s, parts = r["summary"], []
    sizes = [z for z in r["sizes"] if z != "0"]
    for task in r["tasks"]:
        for metric in ("srcc", "plcc"):
            body = []
            for m in r["methods"]:
                cells = []
                for size in sizes:
                    e = s.get(f"{task}|{size}|{m}") or s.get(f"{task}|0|{m}")
                    cells.append("—" if e is None else
                                 f"{e[metric]:.3f} ± {e[metric + '_sd']:.3f}" if e["seeds"] > 1 else f"{e[metric]:.3f}")
                body.append([LABELS.get(m, m)] + cells)
            parts.append(f"**{task}**, {metric.upper()} on the test split (mean ± sd over seeds; zero-shot rows "
                         "need no labels, so one number fills the row)\n\n"
                         + _table(["method"] + [f"{z} labels" for z in sizes], body))
        runs = [x for x in r["rows"] if x["task"] == task and x["method"] == "adapter_3g"]
        kept = np.mean([x["monotone"] for x in runs]) if runs else float("nan")
        cv = [x for x in r["rows"] if x["task"] == task and x["method"] == "adapter_3g_cv"]
        chosen = {}
        for x in cv:
            chosen.setdefault(x["size"], []).append(x["lr"])
        parts.append(f"Learned levels of `adapter_3g` stayed in order in {100 * kept:.0f} % of the {len(runs)} runs. "
                     "Learning rates chosen by CV: " + "; ".join(
                         f"{z} labels: {', '.join(f'{v:g}' for v in lrs)}" for z, lrs in chosen.items()) + ".")
    return "\n\n".join(parts)
