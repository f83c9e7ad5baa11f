"""Embedder: raw texts -> (N, D) float32 features through a frozen backbone and the cache.

The cached path is the uncached path plus a lookup: misses are embedded in
length-sorted batches exactly as ``Backbone.embed`` does, and a test proves the
two return the same vectors. Duplicate texts are embedded once. Embedding 1,000 texts or more shows
a progress bar on stderr (``progress=None``, the default; ``True`` from 512, ``False`` never; the
CLI's ``--quiet`` and ``TQDM_DISABLE=1`` turn every bar off) and logs a line on the ``anytask``
logger.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from anytask.backbones.base import Backbone, check_texts
from anytask.backbones.cache import EmbeddingCache

log = logging.getLogger(__name__)
PROGRESS_FROM = 1000  # texts to embed before a bar appears by default


class Embedder:
    """``Embedder(backbone, cache_dir=None, use_cache=True).embed(texts) -> np.ndarray (N, D)``."""

    def __init__(self, backbone: Backbone, *, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True, batch_size: int = 32, progress: bool | None = None) -> None:
        self.backbone = backbone
        self.batch_size = batch_size
        self.progress = progress
        self.cache = EmbeddingCache(backbone.identity, backbone.config.dim, cache_dir) if use_cache else None

    @property
    def dim(self) -> int:
        return self.backbone.config.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        unique = list(dict.fromkeys(texts))  # first-seen order, duplicates once
        vectors: dict[str, np.ndarray] = {}
        if self.cache is not None:
            keys = [self.cache.key(t) for t in unique]
            hits = self.cache.get_many(keys)
            for text, key in zip(unique, keys):
                if key in hits:
                    vectors[text] = hits[key]
        missing = [t for t in unique if t not in vectors]
        if missing:
            vectors.update(self._compute(missing))
        for i, text in enumerate(texts):
            out[i] = vectors[text]
        return out

    def _compute(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Embed in chunks, writing each chunk to the cache as soon as it is done."""
        step = self.batch_size * 16
        shown = self.progress is not False and len(texts) >= (PROGRESS_FROM if self.progress is None else step)
        bar = tqdm(total=len(texts), desc=f"embed [{self.backbone.config.name}]", unit="text", disable=not shown,
                   leave=False)
        start_time = time.perf_counter()
        computed: dict[str, np.ndarray] = {}
        for start in range(0, len(texts), step):
            part = texts[start : start + step]
            X = self.backbone.embed(part, batch_size=self.batch_size).numpy()  # (n, D)
            if self.cache is not None:
                self.cache.put_many([(self.cache.key(t), v) for t, v in zip(part, X)])
            computed.update(zip(part, X))
            bar.update(len(part))
        bar.close()
        seconds = time.perf_counter() - start_time
        log.info("embedded %d texts with %s on %s in %.1f s (%.0f texts/s)", len(texts), self.backbone.config.name,
                 self.backbone.device, seconds, len(texts) / max(seconds, 1e-9))
        return computed


def cached_embeddings(identity: str, dim: int, texts: Sequence[str], *,
                      cache_dir: str | os.PathLike | None = None) -> np.ndarray | None:
    """The cached vectors of ``texts`` for the backbone ``identity``, or None if any is missing.

    The cache is keyed by the identity (which includes the weights' hash), so these are exactly the
    vectors the backbone gives; a caller that knows the identity (a fitted classifier) can predict on
    cached texts without loading the model at all. A test checks it equals the embedding path."""
    texts = check_texts(texts)
    cache = EmbeddingCache(identity, dim, cache_dir)
    if not cache.path.is_file():
        return None
    try:
        unique = list(dict.fromkeys(texts))
        keys = [cache.key(t) for t in unique]
        hits = cache.get_many(keys)
        if len(hits) < len(keys):
            return None
        vectors = dict(zip(unique, (hits[k] for k in keys)))
        return np.stack([vectors[t] for t in texts]).astype(np.float32) if texts else np.empty((0, dim), np.float32)
    finally:
        cache.close()
