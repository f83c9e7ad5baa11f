"""IndexService: search indexes beside the tasks, on the same frozen backbone and encoder batcher.

Documents are embedded once (through the shared batcher and its cache), stored durably with their
vectors (``index_store.py``), and searched in a vector index of the retrieval family (``exact`` by
default, ``hnsw`` for large corpora) that lives in memory: built from the stored rows on first use,
updated in place after each committed change, dropped least-recently-used past a memory bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts
from anytask.apps.serve.index_store import IndexExists, IndexInfo, IndexStore
from anytask.apps.serve.store import check_name


@dataclass
class _Live:
    """An index in memory: the stored index at ``version``, searched and changed under ``lock``."""

    created: float
    version: int
    index: object
    texts: dict
    lock: threading.Lock = field(default_factory=threading.Lock)


class IndexService:
    def __init__(self, store: IndexStore, batcher, *, backbone: str, identity: str, limits) -> None:
        self.store = store
        self.batcher = batcher
        self.backbone = backbone
        self.identity = identity
        self.limits = limits
        self._live: OrderedDict[str, _Live] = OrderedDict()
        self._live_lock = threading.Lock()

    # -- validation -------------------------------------------------------------------------------
    def _check_documents(self, ids: list[str], texts: list[str]) -> None:
        from anytask.methods.retrieval.base import check_ids

        check_input_texts(texts, what="documents", limit=self.limits.max_examples,
                          max_chars=self.limits.max_text_chars)
        check_ids(ids, len(texts))

    @staticmethod
    def _index_class(kind: str, params: dict | None):
        from anytask.methods.retrieval import INDEXES

        cls = INDEXES.get(kind)
        try:
            cls(**(params or {}))
        except TypeError as e:
            raise AnytaskError(f"index {kind!r} does not take parameters {params}: {e}") from None
        return cls

    def _check_identity(self, info: IndexInfo) -> None:
        if info.identity != self.identity:
            raise AnytaskError(f"index {info.name!r} holds embeddings of {info.identity}, but this server embeds "
                               f"with {self.identity}; serve it with that backbone, or create the index again")

    # -- writes -----------------------------------------------------------------------------------
    async def create(self, name: str, ids: list[str], texts: list[str], kind: str = "exact",
                     params: dict | None = None) -> IndexInfo:
        check_name(name, what="index")
        self._check_documents(ids, texts)
        if len(ids) > self.limits.max_documents:
            raise AnytaskError(f"{len(ids)} documents; an index holds at most {self.limits.max_documents}")
        cls = self._index_class(kind, params)
        if await asyncio.to_thread(self.store.exists, name):  # before the encoder pass, not only at the commit
            raise IndexExists(f"an index named {name!r} already exists; delete it first or add documents to it")
        vectors = await self.batcher.embed(texts)
        index = await asyncio.to_thread(lambda: cls(**(params or {})).fit(vectors, ids))

        def install(info: IndexInfo) -> None:
            self._install(name, _Live(info.created, info.version, index, dict(zip(ids, texts))))

        return await asyncio.to_thread(self.store.create, name, kind, dict(params or {}), self.backbone,
                                       self.identity, ids, texts, vectors, max_indexes=self.limits.max_indexes,
                                       on_commit=install)

    async def add(self, name: str, ids: list[str], texts: list[str]) -> IndexInfo:
        self._check_documents(ids, texts)
        info = await asyncio.to_thread(self.store.get, name)
        self._check_identity(info)
        vectors = await self.batcher.embed(texts)

        def apply(live: _Live) -> None:
            live.index.add(vectors, ids)
            live.texts.update(zip(ids, texts))

        return await asyncio.to_thread(self.store.add, name, ids, texts, vectors,
                                       max_documents=self.limits.max_documents,
                                       on_commit=lambda info: self._apply(info, apply))

    async def delete_documents(self, name: str, ids: list[str]) -> IndexInfo:
        if len(ids) > self.limits.max_examples:
            raise AnytaskError(f"{len(ids)} ids in one request; the limit is {self.limits.max_examples}")

        def apply(live: _Live) -> None:
            live.index.remove(ids)
            for i in ids:
                live.texts.pop(i, None)

        return await asyncio.to_thread(self.store.delete_documents, name, list(dict.fromkeys(ids)),
                                       on_commit=lambda info: self._apply(info, apply))

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.store.delete, name)
        with self._live_lock:
            self._live.pop(name, None)

    # -- the live indexes ----------------------------------------------------------------------------
    def _install(self, name: str, live: _Live) -> None:
        with self._live_lock:
            self._live[name] = live
            self._live.move_to_end(name)
            bound = self.limits.max_live_documents
            while len(self._live) > 1 and sum(len(v.texts) for v in self._live.values()) > bound:
                self._live.popitem(last=False)

    def _apply(self, info: IndexInfo, change) -> None:
        """Called under the store's writer lock right after a commit: bring the live index to ``info.version``.
        A live index that is not exactly one version behind, or that the change fails on, is dropped and
        rebuilt from the stored rows at its next search (the commit stands either way)."""
        with self._live_lock:
            live = self._live.get(info.name)
        if live is None:
            return
        with live.lock:
            if live.created == info.created and live.version == info.version - 1:
                try:
                    change(live)
                    live.version = info.version
                    return
                except Exception:  # noqa: BLE001 - the rows are the truth; the next search rebuilds from them
                    pass
        with self._live_lock:
            if self._live.get(info.name) is live:
                del self._live[info.name]

    def _current(self, name: str) -> tuple[IndexInfo, _Live]:
        info = self.store.get(name)
        self._check_identity(info)
        with self._live_lock:
            live = self._live.get(name)
            if live is not None:
                self._live.move_to_end(name)
        if live is not None and live.created == info.created and live.version == info.version:
            return info, live
        info, ids, texts, vectors = self.store.documents(name)  # first use, or changed by another process
        from anytask.methods.retrieval import INDEXES

        live = _Live(info.created, info.version, INDEXES.get(info.kind)(**info.params).fit(vectors, ids),
                     dict(zip(ids, texts)))
        self._install(name, live)
        return info, live

    # -- reads ------------------------------------------------------------------------------------
    async def search(self, name: str, queries: list[str], k: int = 10) -> list[list[dict]]:
        check_input_texts(queries, what="queries", limit=self.limits.max_texts, max_chars=self.limits.max_text_chars)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= self.limits.max_k:
            raise AnytaskError(f"k={k!r}: ask for 1 to {self.limits.max_k} documents per query")
        info = await asyncio.to_thread(self.store.get, name)
        self._check_identity(info)
        if k > info.n_documents:
            raise AnytaskError(f"k={k} but index {name!r} holds {info.n_documents} documents; ask for at most that "
                               "many")
        Q = await self.batcher.embed(queries)
        return await asyncio.to_thread(self._search, name, Q, k)

    def _search(self, name: str, Q: np.ndarray, k: int) -> list[list[dict]]:
        _, live = self._current(name)
        with live.lock:
            k = min(k, len(live.texts))  # a delete may have landed since the check above
            scores, ids = live.index.search(Q, k)
            return [[{"id": d, "score": float(s), "text": live.texts[d]} for s, d in zip(srow, drow)]
                    for srow, drow in zip(scores, ids)]


__all__ = ["IndexService"]
