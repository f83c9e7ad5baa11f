"""Embedding throughput: anytask's Embedder (cold, cache off, warm) vs sentence-transformers' encode.

Same texts, same batch size, same process, alternating order over several rounds.
    python benchmarks/spine/throughput.py --out benchmarks/spine/throughput.json
Texts: the ag_news and trec test sets from ../shared/data/text when present, else the
project's synthetic topic sentences.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from anytask.backbones import Embedder, create_backbone
from anytask.backbones.hf import minilm_path
from anytask.data import load_task, make_topic_task

ROOT = Path(__file__).resolve().parents[2]


def load_texts(n: int) -> tuple[list[str], str]:
    root = ROOT.parent / "shared" / "data" / "text"
    if (root / "ag_news").is_dir():
        texts = list(load_task(root, "ag_news")[1].X) + list(load_task(root, "trec")[1].X)
        return list(dict.fromkeys(texts))[:n], "ag_news + trec test sets"
    train, test = make_topic_task(200)
    return list(dict.fromkeys(list(train.X) + list(test.X)))[:n], "synthetic topics"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=str(ROOT / "benchmarks/spine/throughput.json"))
    args = p.parse_args()

    from sentence_transformers import SentenceTransformer

    texts, source = load_texts(args.n)
    st = SentenceTransformer(str(minilm_path()), device="cpu")
    backbone = create_backbone("minilm")
    rates: dict[str, list[float]] = {"sentence_transformers": [], "anytask_no_cache": [], "anytask_cold": [],
                                     "anytask_warm": []}
    max_diff = 0.0
    for r in range(args.rounds):
        scratch = Path(tempfile.mkdtemp(prefix="anytask-throughput-"))
        try:
            t = time.perf_counter()
            ref = st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
            rates["sentence_transformers"].append(len(texts) / (time.perf_counter() - t))
            t = time.perf_counter()
            plain = Embedder(backbone, use_cache=False, batch_size=args.batch_size).embed(texts)
            rates["anytask_no_cache"].append(len(texts) / (time.perf_counter() - t))
            t = time.perf_counter()
            cold = Embedder(backbone, cache_dir=scratch, batch_size=args.batch_size).embed(texts)
            rates["anytask_cold"].append(len(texts) / (time.perf_counter() - t))
            t = time.perf_counter()
            warm = Embedder(backbone, cache_dir=scratch, batch_size=args.batch_size).embed(texts)
            rates["anytask_warm"].append(len(texts) / (time.perf_counter() - t))
            max_diff = max(max_diff, float(np.abs(cold - ref).max()), float(np.abs(plain - ref).max()))
            assert np.array_equal(warm, cold)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()), flush=True)

    summary = {k: {"mean": round(float(np.mean(v)), 1), "std": round(float(np.std(v)), 1)} for k, v in rates.items()}
    st_rate = summary["sentence_transformers"]["mean"]
    result = {
        "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)
                                              if Path(sys.argv[0]).is_absolute() else sys.argv[0]), *sys.argv[1:]]),
        "texts": len(texts), "source": source, "batch_size": args.batch_size, "rounds": args.rounds,
        "texts_per_second": summary,
        "cold_overhead_vs_sentence_transformers_pct": round(100 * (st_rate / summary["anytask_cold"]["mean"] - 1), 1),
        "no_cache_overhead_vs_sentence_transformers_pct": round(
            100 * (st_rate / summary["anytask_no_cache"]["mean"] - 1), 1),
        "warm_speedup_vs_cold": round(summary["anytask_warm"]["mean"] / summary["anytask_cold"]["mean"], 1),
        "max_abs_difference_vs_sentence_transformers": max_diff,
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
