"""Pre-train the in-context reasoning module and write it where the `icl` head finds it.

    python -m anytask.methods.icl.train [--steps N] [--minutes M] [--out DIR] [--regression]

(The shipped modules were made by this script when it lived at benchmarks/icl/pretrain.py; their
config.json records that command.)

The priors label real MiniLM embeddings of unrelated text (the ../shared/data retrieval
corpora: CISI abstracts and ESCO occupation/skill descriptions; none of the benchmark tasks)
when that folder is present, and Gaussian points otherwise; the config records which.
The folder gets config.json + model.safetensors (anytask.core.io format), training_log.jsonl and
validation.png (accuracy on fixed synthetic validation tasks against the step).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anytask.core import io
from anytask.methods.icl.model import ICLConfig, pretrain

SHIPPED = Path(__file__).resolve().parent / "weights"


def pool_texts(data_root: Path, limit: int = 12000, seed: int = 0) -> list[str]:
    texts = []
    for line in (data_root / "retrieval/cisi/docs.jsonl").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            d = json.loads(line)
            texts.append((d.get("title", "") + " " + d.get("text", "")).strip()[:1000])
    for line in (data_root / "retrieval/cisi/queries.jsonl").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            texts.append(json.loads(line).get("text", ""))
    for name in ("occupations", "skills"):
        for line in (data_root / f"retrieval/esco/{name}.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                d = json.loads(line)
                texts.append(d["label"])
                if d.get("description"):
                    texts.append(d["description"])
    texts = [t for t in texts if t.strip()]
    order = np.random.default_rng(seed).permutation(len(texts))[:limit]
    return [texts[i] for i in order]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=None, help="stop early after this long")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--max-classes", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--regression", action="store_true")
    ap.add_argument("--data-root", default=None,
                    help="the shared data folder (default: $ANYTASK_SHARED_DATA or ../shared/data beside a checkout)")
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    task = "regression" if args.regression else "classification"
    out = Path(args.out) if args.out else SHIPPED / task
    torch.set_num_threads(max(1, torch.get_num_threads()))

    pool, pool_info = None, "Gaussian points on the sphere (no --data-root)"
    from anytask.data.sources import shared_data_root

    data_root = Path(args.data_root) if args.data_root else (shared_data_root() or Path("/nonexistent"))
    if (data_root / "retrieval").is_dir():
        from anytask.backbones import get_embedder

        texts = pool_texts(data_root)
        pool = torch.from_numpy(get_embedder(args.backbone).embed(texts)).float()
        pool_info = f"{len(texts)} {args.backbone} embeddings of CISI + ESCO texts ({data_root}/retrieval)"
    config = ICLConfig(width=args.width, layers=args.layers, hidden=args.hidden, max_classes=args.max_classes,
                       batch_size=args.batch_size, lr=args.lr,
                       steps=args.steps, task=task)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / f".{out.name}.training_log.jsonl"  # moved into the folder once it is saved
    log_file = log_path.open("w")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    budget = args.minutes * 60 if args.minutes else None
    model, history = pretrain(config, pool, log=log, time_budget_s=budget)
    device = "GPU" if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    info = {"command": "python -m anytask.methods.icl.train " + " ".join(argv if argv is not None else sys.argv[1:]),
            "trained_on": f"{device}, {platform.processor() or platform.machine()}",
            "steps_done": history[-1]["step"], "seconds": history[-1]["seconds"],
            "pool": pool_info, "priors": "nearest random anchors, random linear functions, Gaussian mixtures; "
            "label noise up to 15 %; 20 % of contexts with skewed class counts; 2..max_classes classes, "
            "fewer more often (C = 2 + floor(u^2 (max_classes - 1)))" if task == "classification"
            else "linear-Gaussian regression: half the batches 2..65 correlated Gaussian inputs with dense or "
            "sparse weights, half the pool's embeddings with rank <= 16 weights; signal-to-noise 0.1..10",
            "final_val": history[-1]["val"]}
    model.config = replace(config, info=info)
    log_file.close()
    io.save(model, out)  # replaces the folder atomically, then the log and the curve go beside the weights
    log_path.replace(out / "training_log.jsonl")
    plot(history, out / "validation.png", task)
    print(f"saved {out}")


def plot(history: list[dict], path: Path, task: str) -> None:
    from anytask.core.extras import require

    matplotlib = require("matplotlib", "plot", "plotting")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in history[-1]["val"]:
        ax.plot(steps, [h["val"][key] for h in history], label=key, lw=2 if key == "mean" else 1)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy" if task == "classification" else "R²")
    ax.set_title(f"synthetic validation tasks ({'classes x shots' if task == 'classification' else 'context size'})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
