"""Vector indexes at 10k, 100k and 1M vectors: build time, query latency, memory, recall@10 against exact.

    python benchmarks/retrieval/index.py --sizes 10000,100000,1000000 --out benchmarks/retrieval/index.json

The vectors: MiniLM embeddings of the shared text tasks' training texts (``--data-root``, as many as
there are, up to the size asked) topped up with random unit vectors when the texts run out (the 1M point
is random, as the issue allows; the file records how many of each). Queries: ``--queries`` held-out
texts embedded the same way (random for an all-random point). For every index kind and size: build
seconds, resident memory added by the build (RSS), one-query-at-a-time latency p50 / p99 over the
queries after ``--warmup`` untimed ones, and recall@10 of each approximate index against ``exact`` on
the same queries (the exact index is the baseline). ``torch``, usearch and FAISS run on ``--threads``.
``--indexes`` may name ``faiss_hnsw``: FAISS's HNSW with the same settings, measured to choose the
library behind ``hnsw`` (ids are FAISS's positions; no id mapping, so its latency is a slight underestimate
beside the library's indexes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus(data_root: str | None, n_max: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Embedded texts (documents, queries); empty arrays when there is no data root."""
    if not data_root or not Path(data_root).is_dir():
        return np.zeros((0, 384), np.float32), np.zeros((0, 384), np.float32)
    from anytask.backbones import get_embedder
    from anytask.data import load_dataset

    texts = []
    for task in sorted(p.name for p in Path(data_root).iterdir() if (p / "train.jsonl").is_file()):
        train, _ = load_dataset(task, data_root=data_root)
        texts += list(train.X)
    texts = list(dict.fromkeys(texts))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    queries = [texts[i] for i in order[:n_queries]]
    docs = [texts[i] for i in order[n_queries:n_queries + n_max]]
    embed = get_embedder("minilm").embed
    return embed(docs), embed(queries)


def random_unit(n: int, d: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


class FaissHNSW:
    """FAISS's ``IndexHNSWFlat`` with the hnsw index's settings (M 16, efConstruction 128, efSearch 128, inner
    product on unit vectors), measured beside usearch to choose the library; not a library index (FAISS's
    HNSW cannot remove vectors, which ``BaseIndex.remove`` needs)."""

    def __init__(self, threads: int) -> None:
        import faiss

        faiss.omp_set_num_threads(threads)
        self.faiss = faiss

    def fit(self, X: np.ndarray) -> "FaissHNSW":
        self.index = self.faiss.IndexHNSWFlat(X.shape[1], 16, self.faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 128
        self.index.add(np.ascontiguousarray(X, dtype=np.float32))
        self.index.hnsw.efSearch = 128
        return self

    def search(self, Q: np.ndarray, k: int):
        scores, ids = self.index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
        return scores, ids


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--indexes", default="exact,hnsw")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/retrieval/index.json")
    ap.add_argument("--merge", action="store_true",
                    help="keep --out's rows of other sizes (and its commands): add a size without rerunning the rest")
    args = ap.parse_args(argv)
    import torch

    from anytask.methods.retrieval import INDEXES

    torch.set_num_threads(args.threads)
    sizes = [int(v) for v in args.sizes.split(",")]
    real_docs, real_queries = corpus(args.data_root, max(sizes), args.queries)
    command = "python " + " ".join(["benchmarks/retrieval/index.py", *(argv or sys.argv[1:])])
    result = {"command": command, "args": vars(args), "rows": []}
    if args.merge and Path(args.out).is_file():
        old = json.loads(Path(args.out).read_text())
        result["commands"] = old.get("commands", [old["command"]]) + [command]
        result["command"] = " && ".join(result["commands"])
        result["rows"] = [r for r in old["rows"] if (r["n"], r["index"]) not in
                          {(n, i) for n in sizes for i in args.indexes.split(",")}]
    for n in sizes:
        n_real = min(n, len(real_docs)) if n < 1_000_000 else 0
        X = np.concatenate([real_docs[:n_real], random_unit(n - n_real, 384, n)])
        Q = real_queries if n_real else random_unit(args.queries, 384, 12345)
        truth = None if "exact" in args.indexes.split(",") else INDEXES.get("exact")().fit(X).search(Q, 10)[1]
        for name in args.indexes.split(","):
            params = {"threads": args.threads} if name in ("hnsw", "faiss_hnsw") else {}
            before = rss_mb()
            t0 = time.perf_counter()
            index = FaissHNSW(args.threads).fit(X) if name == "faiss_hnsw" else INDEXES.get(name)(**params).fit(X)
            build = time.perf_counter() - t0
            memory = rss_mb() - before
            for q in Q[: args.warmup]:
                index.search(q[None], 10)
            lat = []
            for q in Q:
                t = time.perf_counter()
                index.search(q[None], 10)
                lat.append(time.perf_counter() - t)
            _, ids = index.search(Q, 10)
            if name == "exact":
                truth = ids
            recall = (float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids.tolist(), truth.tolist())]))
                      if truth is not None else None)
            row = {"index": name, "n": n, "n_real": n_real, "dim": int(X.shape[1]), "build_seconds": round(build, 2),
                   "memory_mb": round(memory, 1), "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
                   "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3), "recall_at_10": recall,
                   "params": params}
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
            write_file_atomic(Path(args.out), (json.dumps(result, indent=1) + "\n").encode())
            del index


if __name__ == "__main__":
    main()
