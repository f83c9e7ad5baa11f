"""Markdown tables of the alignment result files, for benchmarks/docs.py (the one writer of results pages)."""

from __future__ import annotations


def _table(header: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _ms(e: dict, key: str) -> str:
    return f"{e[key]:.3f} ± {e[key + '_sd']:.3f}" if e["seeds"] > 1 else f"{e[key]:.3f}"


BRAIN = {"oracle|A": "oracle: the true stimulus embeddings", "brainclip|A": "**BrainCLIP** (stimulus + caption)",
         "lambda_t=0|A": "stimulus only (lambda_t = 0)", "lambda_i=0|A": "caption only (lambda_i = 0)",
         "ridge|A": "ridge decoder (baseline)", "B scratch 500|B": "subject B, 500 stimuli, from scratch",
         "B from A 500|B": "subject B, 500 stimuli, fine-tuned from A", "B ridge 500|B": "subject B, 500, ridge",
         "A mapper on B|B": "subject A's mapper applied to B (no tuning)"}


def brainclip(r: dict) -> str:
    s = r["summary"]
    body = [[BRAIN.get(k, k), s[k]["seeds"], _ms(s[k], "zero_shot_unseen"), _ms(s[k], "zero_shot_all"),
             _ms(s[k], "retrieval_top1"), _ms(s[k], "retrieval_top5")] for k in r["methods"] if k in s]
    cal = r["voxels"]["calibration"]
    return (f"Voxel noise: the signal explains {r['voxels']['r2']:g} of each voxel's variance, where a ridge decoder "
            f"reaches R² {cal[str(r['voxels']['r2'])]:.2f} on held-out training stimuli (the card asks for ~0.3). "
            "Zero-shot: test voxels of the 4 held-out classes, classified by the zero_shot head among the 4 unseen "
            "class prompts (chance 0.25) or among all 14 (chance 0.07). Retrieval: the right stimulus among 100 "
            "(chance 0.01 / 0.05). Mean ± sd over seeds (each seed holds out 4 other classes).\n\n"
            + _table(["decoder", "seeds", "zero-shot, 4 unseen", "zero-shot, all 14", "retrieval top-1",
                      "retrieval top-5"], body))


NAMES = {"mean_pool": "mean pooling (no training)", "single_view": "single view, SimCLR-style",
         "global": "cross-view, global only", "global+local": "**MADELEINE**: cross-view, global + local (OT)"}


def madeleine(r: dict) -> str:
    s = r["summary"]
    body = []
    first = r["shots"][0]
    for m in r["methods"]:
        cells = [f"{s[m + '|' + str(k)]['accuracy']:.3f} ± {s[m + '|' + str(k)]['sd']:.3f}" for k in r["shots"]]
        body.append([NAMES.get(m, m)] + cells + [f"{s[m + '|' + str(first)]['fit_seconds']:.0f}"])
    n = s[r["methods"][0] + "|" + str(first)]["seeds"]
    return (f"Linear probe on frozen slide embeddings, 4 classes (chance 0.25); mean ± sd over {n} seeds (each the "
            "mean of 10 draws of the labelled slides); pretraining on 1,000 unlabelled slides.\n\n"
            + _table(["slide encoder"] + [f"k = {k} per class" for k in r["shots"]] + ["pretrain s"], body))
