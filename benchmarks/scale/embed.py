"""Embedding throughput on one process vs Ray with 1 and 2 local workers (MiniLM, this machine).

    python benchmarks/scale/embed.py --out benchmarks/scale/embed.json

Each configuration embeds a small and a large slice of one corpus (cache off), ``--repeats`` times; the
marginal rate (large - small texts over the difference in seconds) is the steady rate a long job sees, and
the intercept is the fixed cost of a call (Ray starts its actors, each loading the backbone, on every call).
Texts: the shared ag_news training texts (``../shared/data/text``), else the synthetic topic task.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def corpus(n: int) -> tuple[list[str], str]:
    path = ROOT.parent / "shared" / "data" / "text" / "ag_news" / "train.jsonl"
    if path.is_file():
        texts = [json.loads(line)["text"] for line in path.read_text().splitlines()[:n]]
        return list(dict.fromkeys(texts)), "ag_news train (shared data)"
    from anytask.data import make_topic_task

    train, _ = make_topic_task(n // 6 + 1)
    return list(dict.fromkeys(train.X))[:n], "synthetic topics"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--small", type=int, default=400)
    p.add_argument("--large", type=int, default=3200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "scale" / "embed.json"))
    args = p.parse_args(argv)

    import torch

    from anytask.backbones import Embedder, create_backbone
    from anytask.experiments.distributed import RayEmbedder, connect

    texts, source = corpus(args.large)
    sizes = {"small": texts[:args.small], "large": texts[:args.large]}
    connect(None, num_cpus=2)
    configs = {
        "local (1 process, 2 threads)": lambda: Embedder(create_backbone("minilm"), use_cache=False, progress=False),
        "ray, 1 worker x 2 threads": lambda: RayEmbedder("minilm", workers=1, threads=2, use_cache=False,
                                                         progress=False),
        "ray, 2 workers x 1 thread": lambda: RayEmbedder("minilm", workers=2, threads=1, use_cache=False,
                                                         progress=False),
    }
    rows = []
    torch.set_num_threads(2)
    for name, make in configs.items():
        embedder = make()
        for repeat in range(args.repeats):
            seconds = {}
            for size, part in sizes.items():
                start = time.perf_counter()
                embedder.embed(part)
                seconds[size] = time.perf_counter() - start
            marginal = (len(sizes["large"]) - len(sizes["small"])) / (seconds["large"] - seconds["small"])
            fixed = seconds["small"] - len(sizes["small"]) / marginal
            rows.append({"config": name, "repeat": repeat, "seconds_small": round(seconds["small"], 2),
                         "seconds_large": round(seconds["large"], 2), "texts_per_second": round(marginal, 1),
                         "fixed_seconds": round(fixed, 2),
                         "overall_texts_per_second": round(len(sizes["large"]) / seconds["large"], 1)})
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for name in configs:
        mine = [r for r in rows if r["config"] == name]
        summary[name] = {k: [round(statistics.mean(r[k] for r in mine), 2),
                             round(statistics.stdev(r[k] for r in mine), 2) if len(mine) > 1 else 0.0]
                         for k in ("texts_per_second", "fixed_seconds", "overall_texts_per_second")}
    result = {"command": "python " + " ".join(["benchmarks/scale/embed.py", *sys.argv[1:]]), "backbone": "minilm",
              "corpus": source, "n_small": len(sizes["small"]), "n_large": len(sizes["large"]),
              "repeats": args.repeats, "rows": rows, "summary": summary,
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "cpus": torch.get_num_threads(), "ray": __import__("ray").__version__,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
