"""Fault injection: kill -9 the service during mixed creates, adds and deletes, again and again.

    python benchmarks/serve/faults.py --kills 20 --out benchmarks/serve/faults.json

Each round starts ``anytask serve`` (tiny backbone) on one home, tries a second writer on the same
home (it must be refused) and a read-only reader (it must start and change nothing), runs two
clients that create tasks, add examples and delete tasks at random, and kills the server with
SIGKILL at a random moment 0.5–2.5 s after the round's first acknowledged create. A task counts as acknowledged when its create returned 201; after
every round each acknowledged task that was not deleted must be listed and predict, and every
task whose last acknowledged change was followed by a recorded prediction must predict
bit-identically to it. tests/test_faults.py runs this (marked slow).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOKEN = "fault-injection-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBE = {"texts": ["the striker scored a late goal", "shares fell on monday"]}


def _examples(rng: random.Random, n: int = 4) -> list[dict]:
    topics = [("sport", "a goal in the match"), ("finance", "rates rose again"), ("food", "bake the bread")]
    picked = rng.sample(topics, 2)
    return [{"text": f"{text} {rng.randint(0, 999)}", "label": label} for label, text in picked for _ in range(n // 2)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli() -> list[str]:
    return [sys.executable, "-m", "anytask"]


def _start(home: Path, port: int, env: dict, *extra: str) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([*_cli(), "serve", "--backbone", "tiny", "--home", str(home), "--port", str(port), "-q",
                             *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-1500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 120 s")


def run(kills: int = 20, seed: int = 0, home: Path | None = None) -> dict:
    import httpx

    rng = random.Random(seed)
    home = home or Path(tempfile.mkdtemp(prefix="anytask-faults-")) / "home"
    env = {**os.environ, "ANYTASK_TOKEN": TOKEN, "ANYTASK_CACHE_DIR": str(home.parent / "cache")}
    state: dict[str, dict] = {}  # name -> {"status": present|uncertain|deleted, "proba": last recorded predictions}
    lock = threading.Lock()
    counts = {"creates_acknowledged": 0, "adds_acknowledged": 0, "deletes_acknowledged": 0, "kills": 0,
              "second_writer_refused": 0, "readers_started": 0, "checked_bit_identical": 0}
    start_time = time.time()
    for round_no in range(kills):
        port = _port()
        proc = _start(home, port, env)
        second = subprocess.run([*_cli(), "serve", "--backbone", "tiny", "--home", str(home), "--port", str(_port())],
                                env=env, capture_output=True, text=True, timeout=120)
        if second.returncode == 2 and "one writer per home" in second.stderr:
            counts["second_writer_refused"] += 1
        reader_port = _port()
        reader = _start(home, reader_port, env, "--read-only")
        counts["readers_started"] += 1
        reader.send_signal(signal.SIGTERM)
        reader.wait()
        stop = threading.Event()

        def client(worker: int) -> None:
            local = random.Random(rng.random())
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                i = 0
                while not stop.is_set():
                    i += 1
                    with lock:
                        live = [n for n, s in state.items() if s["status"] == "present"]
                    op = local.choice(["create", "create", "add", "delete"]) if live else "create"
                    try:
                        if op == "create":
                            name = f"r{round_no}-w{worker}-{i}"
                            r = c.post("/v1/tasks", json={"name": name, "examples": _examples(local)}, headers=AUTH)
                            if r.status_code == 201:
                                with lock:
                                    state[name] = {"status": "present", "proba": None}
                                    counts["creates_acknowledged"] += 1
                        elif op == "add":
                            name = local.choice(live)
                            with lock:
                                state[name]["proba"] = None  # its head is about to change
                            r = c.post(f"/v1/tasks/{name}/examples", json={"examples": _examples(local, 2)},
                                       headers=AUTH)
                            if r.status_code == 200:
                                with lock:
                                    counts["adds_acknowledged"] += 1
                        else:
                            name = local.choice(live)
                            with lock:
                                state[name]["status"] = "uncertain"  # gone or not, until the answer comes
                            r = c.delete(f"/v1/tasks/{name}", headers=AUTH)
                            with lock:
                                if r.status_code == 204:
                                    state[name]["status"] = "deleted"
                                    counts["deletes_acknowledged"] += 1
                                else:
                                    state[name]["status"] = "present"
                            continue
                        p = c.post(f"/v1/tasks/{name}/predict", json=PROBE)
                        if p.status_code == 200:
                            with lock:
                                if state[name]["status"] == "present":
                                    state[name]["proba"] = p.json()
                    except httpx.HTTPError:
                        return  # the server was killed

        threads = [threading.Thread(target=client, args=(w,)) for w in range(2)]
        before = counts["creates_acknowledged"]
        for t in threads:
            t.start()
        waited = time.time() + 30  # a loaded machine is slow: the kill window opens once this round has written
        while counts["creates_acknowledged"] == before and time.time() < waited:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.5, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts["kills"] += 1
        stop.set()
        for t in threads:
            t.join()
    # every acknowledged task that was not deleted is there and predicts as recorded
    port = _port()
    proc = _start(home, port, env)
    lost, changed = [], []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            listed = {t["name"] for t in c.get("/v1/tasks").json()["tasks"]}
            for name, s in state.items():
                if s["status"] != "present":
                    continue
                r = c.post(f"/v1/tasks/{name}/predict", json=PROBE)
                if name not in listed or r.status_code != 200:
                    lost.append(name)
                elif s["proba"] is not None:
                    counts["checked_bit_identical"] += 1
                    if r.json() != s["proba"]:
                        changed.append(name)
            orphans = sorted({p.parent.name for p in (home / "heads").glob("*/v*")} - listed)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return {**counts, "tasks_present_at_end": sum(s["status"] == "present" for s in state.values()),
            "lost": len(lost), "lost_names": lost[:10], "predictions_changed": len(changed),
            "orphan_head_folders": len(orphans), "seconds": round(time.time() - start_time, 1), "seed": seed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/serve/faults.json")
    args = ap.parse_args()
    result = run(args.kills, args.seed)
    result["command"] = "python benchmarks/serve/faults.py " + " ".join(sys.argv[1:])
    print(json.dumps(result, indent=1))
    from anytask.core.io import write_file_atomic

    write_file_atomic(args.out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
