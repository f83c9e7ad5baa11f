"""Scale-out on Ray: embed a corpus across a cluster, run a benchmark grid as Ray tasks.

``pip install 'anytask[ray]'``. Both paths give what the single process gives:

* ``RayEmbedder`` is an ``Embedder`` whose cache misses are embedded by Ray Data (``map_batches`` over
  an actor pool, one backbone per worker, one GPU each when the cluster has GPUs). Cache look-ups,
  duplicates and writes stay in the driver, so the cache, the ``.npy`` and the Parquet output are the
  ones the local path writes; every worker checks that its backbone has the driver's identity.
* ``ray_cells`` runs the (task x shots x seed) cells of ``run_bench`` as Ray tasks, every head of a
  cell in one task (the baseline beside the method on the same sample, as locally); the result file
  equals the local one except for the timings.

``address`` is a running cluster's (``ray://host:10001`` or ``auto``); ``None`` starts a local one
with ``num_cpus`` workers. Measured on this 2-core machine in ``benchmarks/scale/``.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np

from anytask.backbones.embedder import Embedder
from anytask.core.errors import AnytaskError
from anytask.core.extras import require

log = logging.getLogger(__name__)


def connect(address: str | None = None, *, num_cpus: int | None = None):
    """``ray.init`` once per process (a running session is reused), with anytask's cache and device settings
    passed to the workers."""
    ray = require("ray", "ray", "scale-out on Ray")
    if ray.is_initialized():
        return ray
    env = {k: v for k, v in os.environ.items() if k.startswith(("ANYTASK_", "HF_")) or k == "TQDM_DISABLE"}
    kwargs = {"num_cpus": num_cpus} if address is None and num_cpus else {}
    ray.init(address=address, runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, **kwargs)
    log.info("ray: connected to %s (%s)", address or "a new local cluster", ray.cluster_resources())
    return ray


class _EmbedWorker:
    """One backbone per Ray actor; batches of texts in, float32 vectors out."""

    def __init__(self, backbone: str, identity: str, device: str, batch_size: int, threads: int) -> None:
        import torch

        from anytask.backbones import create_backbone

        torch.set_num_threads(threads)
        self.backbone = create_backbone(backbone, device=device)
        if self.backbone.identity != identity:
            raise AnytaskError(f"a Ray worker's {backbone!r} is {self.backbone.identity}, not the driver's {identity}: "
                               "install the same weights on every node")
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"row": batch["row"], "embedding": self.backbone.embed(texts, batch_size=self.batch_size).numpy()}


class RayEmbedder(Embedder):
    """``Embedder`` whose misses are embedded on a Ray cluster (see the module docstring).

    ``RayEmbedder("minilm", workers=2).embed(texts)`` equals ``get_embedder("minilm").embed(texts)``; ``workers``
    is the number of actors (default: one per CPU of the cluster, one per GPU when it has GPUs), each running
    torch on ``threads`` CPU threads (and reserving as many CPUs)."""

    def __init__(self, backbone: str = "minilm", *, address: str | None = None, workers: int | None = None,
                 cache_dir=None, use_cache: bool = True, batch_size: int = 32, block_size: int = 512,
                 device: str = "auto", threads: int = 1, progress: bool | None = None) -> None:
        from anytask.backbones import create_backbone

        self.ray = connect(address, num_cpus=workers)
        resources = self.ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0)) if device in ("auto", "cuda") else 0
        self.workers = workers or self.gpus or max(1, int(resources.get("CPU", 1)))
        self.name, self.device, self.block_size = backbone, ("cuda" if self.gpus else "cpu"), block_size
        self.threads = int(threads)
        super().__init__(create_backbone(backbone), cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size,
                         progress=progress)

    def _compute(self, texts: list[str]) -> dict[str, np.ndarray]:
        import ray.data

        from tqdm.auto import tqdm

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False  # ours below counts texts
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # enough blocks that every worker has work, no block above block_size texts
        blocks = min(max(-(-len(texts) // self.block_size), 2 * self.workers), max(1, len(texts)))
        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
        bar = tqdm(total=len(texts), desc=f"embed on ray [{self.name} x{self.workers}]", unit="text",
                   disable=self.progress is False or (self.progress is None and len(texts) < 1000), leave=False)
        out = ds.map_batches(_EmbedWorker, batch_size=self.block_size, batch_format="numpy",
                             fn_constructor_args=(self.name, self.backbone.identity, self.device, self.batch_size,
                                                  self.threads),
                             compute=ray.data.ActorPoolStrategy(size=self.workers),
                             num_cpus=0 if self.gpus else self.threads, num_gpus=1 if self.gpus else 0)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0
        for batch in out.iter_batches(batch_size=self.block_size, batch_format="numpy"):
            vectors[batch["row"]] = batch["embedding"]
            done += len(batch["row"])
            bar.update(len(batch["row"]))
            if self.cache is not None:  # written as results arrive: an interrupted job keeps what it embedded
                self.cache.put_many([(self.cache.key(texts[i]), vectors[i]) for i in batch["row"]])
        bar.close()
        if done != len(texts):
            raise AnytaskError(f"Ray returned {done} embeddings for {len(texts)} texts")
        return dict(zip(texts, vectors))


def ray_cells(address: str | None = None, *, num_cpus: int | None = None, backbone: str | None = None,
              cache_dir: str | None = None, progress: bool = True):
    """A ``cells`` function for ``run_bench``: each (task, k, seed) cell with all its heads as one Ray task,
    each task's data shipped to the object store once."""
    ray = connect(address, num_cpus=num_cpus)

    @ray.remote(num_cpus=1)
    def cell(task, k, seed, heads):
        import torch

        from anytask.experiments.runner import run_cell

        torch.set_num_threads(1)
        return run_cell(task, k, seed, heads, backbone=backbone, cache_dir=cache_dir)

    def run(grid: Sequence[tuple], heads: list[str]) -> list:
        from tqdm.auto import tqdm

        refs = {}
        stored = {}
        for task, k, seed in grid:
            if id(task) not in stored:
                stored[id(task)] = ray.put(task)
            refs[(id(task), k, seed)] = cell.remote(stored[id(task)], k, seed, heads)
        pending, bar = list(refs.values()), tqdm(total=len(refs), desc="bench (ray)", unit="cell",
                                                 disable=not progress)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            bar.update(len(ready))
        bar.close()
        return [ray.get(refs[(id(task), k, seed)]) for task, k, seed in grid]

    return run


def write_parquet(path, texts: Sequence[str], vectors: np.ndarray) -> None:
    """``text`` and ``embedding`` (a fixed-size float32 list) columns, written atomically."""
    pa = require("pyarrow", "ray", "Parquet output")
    import io as _io

    import pyarrow.parquet as pq

    from anytask.core.io import write_file_atomic

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    table = pa.table({"text": pa.array(list(texts), pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})
    buf = _io.BytesIO()
    pq.write_table(table, buf)
    write_file_atomic(path, buf.getvalue())
