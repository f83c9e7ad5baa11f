"""``anytask serve``: many tasks behind one HTTP endpoint, on one frozen backbone.

``build_app(home, ...)`` wires the store, the embedder and the service; ``serve(...)`` runs
it with uvicorn. The server refuses to start without a token unless it is read-only or in
local-dev mode (which only binds to loopback).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from anytask.core.errors import AnytaskError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(home: str | Path, *, backbone: str = "minilm", token: str | None = None, read_only: bool = False,
              dev: bool = False, cache_dir: str | None = None, limits=None, max_wait_ms: float = 5.0, log=None,
              device: str = "auto", log_json: bool = False):
    from anytask.core.extras import require

    for module in ("fastapi", "uvicorn", "prometheus_client", "pydantic"):
        require(module, "serve", "the HTTP service")
    from anytask.backbones import Embedder, get_backbone
    from anytask.backbones.device import resolve_device
    from anytask.apps.serve.app import create_app
    from anytask.apps.serve.service import Limits, TaskService
    from anytask.apps.serve.store import TaskStore

    if token is not None and len(token) < 8:
        raise AnytaskError("the token must be at least 8 characters long")
    if token is None and not (read_only or dev):
        raise AnytaskError("refusing to start without a token: set ANYTASK_TOKEN (or --token), "
                           "or pass --read-only, or --dev for local development on loopback")
    store = TaskStore(home, read_only=read_only)
    # the service's embeddings live in its home unless a cache folder is named (--cache-dir, $ANYTASK_CACHE_DIR)
    cache_dir = cache_dir or os.environ.get("ANYTASK_CACHE_DIR") or str(Path(home).expanduser() / "cache")
    # small length-sorted sub-batches: on a CPU they waste less on padding than one padded batch
    # (on a GPU one padded batch is cheapest)
    where = resolve_device(device)
    embedder = Embedder(get_backbone(backbone, device=where), cache_dir=cache_dir,
                        batch_size=8 if where == "cpu" else 64)
    service = TaskService(store, embedder, backbone=backbone, limits=limits or Limits(), max_wait_ms=max_wait_ms,
                          cache_dir=cache_dir)
    return create_app(service, token=token, read_only=read_only, log=log, loopback_only=dev and token is None,
                      log_json=log_json)


def serve(*, host: str = "127.0.0.1", port: int = 8000, home: str | Path, backbone: str = "minilm",
          token: str | None = None, read_only: bool = False, dev: bool = False, cache_dir: str | None = None,
          quiet: bool = False, device: str = "auto", log_format: str = "json") -> None:
    """Run the service until Ctrl-C; says where it listens and (unless quiet) logs one line per request."""
    import sys

    from anytask.core.extras import require

    uvicorn = require("uvicorn", "serve", "the HTTP service")

    token = token or os.environ.get("ANYTASK_TOKEN") or None
    if dev and not _is_loopback(host):
        raise AnytaskError(f"--dev (no token) only binds to loopback; {host} is not a loopback address")

    def log(line: str) -> None:
        print(line if log_format == "json" else f"anytask serve: {line}", file=sys.stderr, flush=True)

    app = build_app(home, backbone=backbone, token=token, read_only=read_only, dev=dev, cache_dir=cache_dir,
                    log=None if quiet else log, device=device, log_json=log_format == "json")
    mode = "read-only" if read_only else "no token (dev)" if dev and not token else "writes need the bearer token"
    where = f"[{host}]" if ":" in host else host
    print(f"anytask serve: listening on http://{where}:{port} (home {home}, backbone {backbone}, {mode}); "
          f"API docs at /docs; Ctrl-C stops", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    print("anytask serve: stopped", file=sys.stderr, flush=True)
