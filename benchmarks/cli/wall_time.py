"""Wall time of everyday CLI calls: what a new user waits for.

    python benchmarks/cli/wall_time.py --out benchmarks/cli/wall_time.json
    python benchmarks/cli/wall_time.py --label before --src OLD_CHECKOUT/src --out ...   # an older checkout

Each command runs in a fresh process, ``--repeats`` times, on the default backbone (MiniLM) with a
private, pre-warmed embedding cache: ``--help``; ``list``; ``predict`` on one text that is already in
the cache; ``fit`` on 32 rows whose embeddings are cached; ``serve`` from launch until ``/healthz``
answers. ``--src`` runs the same calls against another checkout's ``src/`` (through PYTHONPATH, with
this environment's packages), so before and after are measured by the same harness on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _cli(src: str | None) -> list[str]:
    if src and not (Path(src) / "anytask" / "apps").is_dir():  # before the layered layout: anytask/cli.py
        return [sys.executable, "-c", "import sys; from anytask.cli import main; sys.exit(main())"]
    return [sys.executable, "-m", "anytask"]


def _timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _serve_ready(cli: list[str], home: Path, env: dict) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = subprocess.Popen([*cli, "serve", "--home", str(home), "--dev", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve did not answer /healthz within 120 s")
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--src", default=None, help="another checkout's src/ folder to time instead of this one")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", default="benchmarks/cli/wall_time.json")
    args = ap.parse_args()
    cli = _cli(args.src)
    work = Path(tempfile.mkdtemp(prefix="anytask-cli-bench-"))
    env = {**os.environ, "ANYTASK_CACHE_DIR": str(work / "cache"), "HF_HUB_OFFLINE": "1"}
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    from anytask.data import make_topic_task  # the data only; timings run in subprocesses

    train, _ = make_topic_task(6)
    rows = list(zip(train.X, train.y))[:32]
    data = work / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in rows) + "\n")
    subprocess.run([*cli, "fit", "--data", str(data), "--out", str(work / "model")], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warms the cache with the 32 texts
    cached = rows[0][0]
    subprocess.run([*cli, "predict", "--model", str(work / "model"), "--text", cached], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    floor = [sys.executable, "-c", "import torch, sklearn.base"]  # what every call that touches a model pays
    calls = {
        "(python -c 'import torch, sklearn.base')": lambda i: _timed(floor, env),
        "--help": lambda i: _timed([*cli, "--help"], env),
        "list": lambda i: _timed([*cli, "list"], env),
        "predict (1 cached text)": lambda i: _timed([*cli, "predict", "--model", str(work / "model"), "--text", cached],
                                                    env),
        "fit (32 cached rows)": lambda i: _timed([*cli, "fit", "--data", str(data), "--out", str(work / f"m{i}")], env),
        "serve until /healthz": lambda i: _serve_ready(cli, work / f"home{i}", env),
    }
    seconds = {name: [round(fn(i), 3) for i in range(args.repeats)] for name, fn in calls.items()}
    for name, v in seconds.items():
        print(f"{name:<26} {statistics.mean(v):6.2f} s ± {statistics.pstdev(v):.2f}", flush=True)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result.setdefault("runs", {})[args.label] = {
        "seconds": seconds, "repeats": args.repeats, "src": "this checkout" if not args.src else "another checkout",
        "command": "python benchmarks/cli/wall_time.py " + " ".join(sys.argv[1:])}
    result["what"] = ("fresh-process wall time of everyday CLI calls on MiniLM with a warm private cache; "
                      "2-core CPU machine")
    from anytask.core.io import write_file_atomic

    write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
