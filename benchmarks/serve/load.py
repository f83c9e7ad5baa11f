"""Bounded load test of ``anytask serve`` on loopback: throughput and p50/p99 latency.

    python benchmarks/serve/load.py --out benchmarks/serve/load.json

Starts the server (MiniLM, or ``--backbone``; a fresh home and a fresh embedding cache, so every text is
embedded for real), registers 10 tasks, then for 1, 8, 16 and 32 concurrent clients sends a
fixed number of requests (each phase also stops after --max-seconds), in two kinds of traffic:
``predict`` (``POST /v1/predict``, one new text each, predicted for all 10 tasks) and ``mixed``
(every fourth request of a client writes: it creates a small task, 8 examples, or adds 2 examples
to one it created; the rest predict as above). The baseline, measured in the same run on the
same texts: offline batch embedding with the library's Embedder (no cache). The load generator
runs on the same 2 cores as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "load-test-token"


def texts_and_tasks(n_texts: int):
    from anytask.data import k_shot_indices, load_task, make_topic_task, task_seed

    root = ROOT.parent / "shared" / "data" / "text"
    tasks = {}
    if (root / "ag_news").is_dir():
        names = ["sst2", "rotten_tomatoes", "sms_spam", "youtube", "ag_news", "dbpedia", "subj", "trec",
                 "financial_phrasebank", "imdb"]
        for name in names:
            train, _ = load_task(root, name)
            idx = k_shot_indices(train.y, 8, task_seed(name, 8, 0))
            tasks[name] = [{"text": train.X[i][:2000], "label": str(train.y[i])} for i in idx]
        pool = list(dict.fromkeys(list(load_task(root, "ag_news")[1].X) + list(load_task(root, "dbpedia")[1].X)))
        source = "ag_news + dbpedia test texts; tasks: 10 shared text tasks, 8 examples per class"
    else:
        train, test = make_topic_task(200)
        for i in range(10):
            tasks[f"topics-{i}"] = [{"text": t, "label": str(y)} for t, y in zip(train.X[i::10], train.y[i::10])]
        pool = list(dict.fromkeys(test.X))
        source = "synthetic topics"
    return pool[:n_texts], tasks, source


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def phase(url: str, tasks: list[str], texts: list[str], clients: int, max_seconds: float,
                traffic: str = "predict", tag: str = "") -> dict:
    latencies: dict[str, list[float]] = {"predict": [], "write": []}
    errors = 0
    queue = list(reversed(texts))
    start = time.perf_counter()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def client(http: httpx.AsyncClient, worker: int):
        nonlocal errors
        mine, i = [], 0
        while queue and time.perf_counter() - start < max_seconds:
            text = queue.pop()
            i += 1
            t0 = time.perf_counter()
            if traffic == "mixed" and i % 4 == 0:
                if mine and i % 8 == 0:
                    r = await http.post(f"/v1/tasks/{mine[-1]}/examples", headers=auth, json={"examples": [
                        {"text": text[:500], "label": "a"}, {"text": text[::-1][:500], "label": "b"}]})
                else:
                    name = f"load-{tag}-{clients}-{worker}-{i}"
                    r = await http.post("/v1/tasks", headers=auth, json={"name": name, "head": "centroid", "examples": [
                        {"text": f"{text[:300]} {j}", "label": "ab"[j % 2]} for j in range(8)]})
                    if r.status_code == 201:
                        mine.append(name)
                kind, ok = "write", r.status_code in (200, 201)
            else:
                r = await http.post("/v1/predict", json={"tasks": tasks, "texts": [text]})
                kind, ok = "predict", r.status_code == 200
            latencies[kind].append(time.perf_counter() - t0)
            errors += not ok

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http, w) for w in range(clients)))
    wall = time.perf_counter() - start
    everything = np.array(latencies["predict"] + latencies["write"]) * 1000
    lat = np.array(latencies["predict"]) * 1000
    row = {"traffic": traffic, "clients": clients, "requests": len(everything), "errors": errors,
           "seconds": round(wall, 2), "requests_per_second": round(len(everything) / wall, 1),
           "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
           "mean_ms": round(float(lat.mean()), 1), "max_ms": round(float(everything.max()), 1)}
    if latencies["write"]:
        w = np.array(latencies["write"]) * 1000
        row.update({"writes": len(w), "write_p50_ms": round(float(np.percentile(w, 50)), 1),
                    "write_p99_ms": round(float(np.percentile(w, 99)), 1)})
    return row


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    p.add_argument("--max-seconds", type=float, default=60)
    p.add_argument("--repeats", type=int, default=3, help="rounds over all concurrency levels")
    p.add_argument("--backbone", default="minilm", help="the server's backbone (default minilm; e.g. int8:minilm)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/serve/load.json"))
    args = p.parse_args()

    levels = [1, 8, 16, 32]
    kinds = ["predict", "mixed"]
    texts, tasks, source = texts_and_tasks(args.requests * (len(levels) * len(kinds) * args.repeats + 1))
    scratch = Path(tempfile.mkdtemp(prefix="anytask-load-"))
    port = free_port()
    env = {**os.environ, "ANYTASK_TOKEN": TOKEN, "ANYTASK_CACHE_DIR": str(scratch / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "anytask", "serve", "--home", str(scratch / "home"),
                               "--port", str(port), "--backbone", args.backbone, "-q"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300) as c:
            for name, examples in tasks.items():
                r = c.post("/v1/tasks", json={"name": name, "examples": examples, "head": "linear_probe"})
                r.raise_for_status()
        names = list(tasks)
        runs = []
        chunks = [texts[i * args.requests : (i + 1) * args.requests] for i in range(len(texts) // args.requests)]
        asyncio.run(phase(url, names, chunks[0][:20], 1, args.max_seconds))  # warm-up
        plan = [(kind, level) for r in range(args.repeats) for kind in kinds for level in levels]
        for n, ((kind, level), chunk) in enumerate(zip(plan, chunks[1:])):
            runs.append(asyncio.run(phase(url, names, chunk, level, args.max_seconds, kind, tag=str(n))))
            print(runs[-1], flush=True)
    finally:
        server.terminate()
        server.wait(30)

    # baseline: offline batch embedding of texts of the same kind, same process, cold cache
    from anytask.backbones import Embedder, get_backbone

    embedder = Embedder(get_backbone(args.backbone), use_cache=False)
    embedder.embed(chunks[0][:64])  # warm-up, as the server had
    offline_texts = [t for chunk in chunks[1 : len(plan) + 1] for t in chunk]  # the texts the phases served
    t0 = time.perf_counter()
    embedder.embed(offline_texts)
    offline = len(offline_texts) / (time.perf_counter() - t0)
    results = []
    for kind in kinds:
        for level in levels:
            mine = [r for r in runs if r["clients"] == level and r["traffic"] == kind]
            row = {"traffic": kind, "clients": level, "repeats": len(mine), "errors": sum(r["errors"] for r in mine),
                   "max_ms": max(r["max_ms"] for r in mine)}
            for key in ("requests_per_second", "p50_ms", "p99_ms") + (("write_p99_ms",) if kind == "mixed" else ()):
                values = [r[key] for r in mine if key in r]
                row[key] = {"mean": round(float(np.mean(values)), 1), "std": round(float(np.std(values)), 1)}
            row["fraction_of_offline_throughput"] = round(row["requests_per_second"]["mean"] / offline, 3)
            results.append(row)
    out = {"command": "python benchmarks/serve/load.py " + " ".join(sys.argv[1:]), "backbone": args.backbone,
           "texts": source,
           "tasks_per_request": len(names), "texts_per_request": 1,
           "offline_batch_embedding_texts_per_second": round(offline, 1), "levels": results,
           "runs": runs}
    from anytask.core.io import write_file_atomic

    write_file_atomic(args.out, (json.dumps(out, indent=1) + "\n").encode())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
