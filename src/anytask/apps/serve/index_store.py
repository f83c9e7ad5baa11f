"""Durable search indexes for the service, in the task registry's SQLite file (WAL, synchronous=FULL).

An index is one row in ``indexes`` (its kind, parameters, the backbone identity its vectors came from,
a version) and one row per document in ``documents`` (id, text, float32 vector). Every change — create,
add, delete — is one transaction that also bumps the version: the commit is the acknowledgement, so a
kill -9 at any moment leaves either the whole request or none of it. The vector index a server searches
is rebuilt in memory from these rows (no second copy on disk to fall out of step); the writer then
updates it in place, and a read-only server reloads an index whose version moved.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.apps.serve.store import TaskStore, check_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS indexes (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, params TEXT NOT NULL, backbone TEXT NOT NULL,
    identity TEXT NOT NULL, dim INTEGER NOT NULL, n_documents INTEGER NOT NULL, version INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    idx TEXT NOT NULL REFERENCES indexes(name) ON DELETE CASCADE, id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (idx, id)
);
CREATE INDEX IF NOT EXISTS documents_seq ON documents (idx, seq);
"""


class IndexNotFound(AnytaskError):
    pass


class IndexExists(AnytaskError):
    pass


@dataclass(frozen=True)
class IndexInfo:
    name: str
    kind: str
    params: dict
    backbone: str
    identity: str
    dim: int
    n_documents: int
    version: int
    created: float
    updated: float


class IndexStore:
    """The indexes of one home, sharing the task registry's connection, writer lock and read-only mode."""

    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks
        if not tasks.read_only:
            with tasks._conn as conn:
                conn.executescript(_SCHEMA)

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.tasks._conn

    def _has_tables(self) -> bool:  # a read-only server over a registry no writer has given indexes yet
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'indexes'").fetchone() is not None

    # -- reads ----------------------------------------------------------------------------------------
    @staticmethod
    def _info(row) -> IndexInfo:
        return IndexInfo(row[0], row[1], json.loads(row[2]), *row[3:])

    def get(self, name: str) -> IndexInfo:
        check_name(name, what="index")
        row = (self._conn.execute("SELECT * FROM indexes WHERE name = ?", (name,)).fetchone()
               if self._has_tables() else None)
        if row is None:
            raise IndexNotFound(f"no index named {name!r}; GET /v1/indexes lists the indexes")
        return self._info(row)

    def exists(self, name: str) -> bool:
        check_name(name, what="index")
        return self._has_tables() and self._conn.execute("SELECT 1 FROM indexes WHERE name = ?",
                                                         (name,)).fetchone() is not None

    def list(self) -> list[IndexInfo]:
        if not self._has_tables():
            return []
        return [self._info(r) for r in self._conn.execute("SELECT * FROM indexes ORDER BY name")]

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM indexes").fetchone()[0] if self._has_tables() else 0

    def documents(self, name: str) -> tuple[IndexInfo, list[str], list[str], np.ndarray]:
        """One consistent snapshot: the index's row and its documents (ids, texts, vectors) in insertion order."""
        conn = self._conn
        with conn:  # one read transaction: the row and the documents of the same version
            conn.execute("BEGIN")
            info = self.get(name)
            rows = conn.execute("SELECT id, text, vector FROM documents WHERE idx = ? ORDER BY seq", (name,)).fetchall()
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), info.dim)
        if len(rows) != info.n_documents:
            raise AnytaskError(f"index {name!r} is damaged: {len(rows)} documents stored, {info.n_documents} recorded")
        return info, [r[0] for r in rows], [r[1] for r in rows], vectors

    def document(self, name: str, doc_id: str) -> str:
        self.get(name)
        row = self._conn.execute("SELECT text FROM documents WHERE idx = ? AND id = ?", (name, doc_id)).fetchone()
        if row is None:
            raise IndexNotFound(f"index {name!r} has no document {doc_id!r}")
        return row[0]

    # -- writes (each one transaction, under the registry's writer lock) ------------------------------------
    def create(self, name: str, kind: str, params: dict, backbone: str, identity: str, ids: list[str],
               texts: list[str], vectors: np.ndarray, *, max_indexes: int, on_commit=None) -> IndexInfo:
        check_name(name, what="index")
        self.tasks._check_writable()
        with self.tasks._write_lock:
            if self._conn.execute("SELECT 1 FROM indexes WHERE name = ?", (name,)).fetchone():
                raise IndexExists(f"an index named {name!r} already exists; delete it first or add documents to it")
            if self.count() >= max_indexes:
                raise AnytaskError(f"the server holds its limit of {max_indexes} indexes; delete one first")
            now = time.time()
            with self._conn as conn:
                conn.execute("INSERT INTO indexes VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                             (name, kind, json.dumps(params), backbone, identity, int(vectors.shape[1]), len(ids),
                              now, now))
                self._insert(conn, name, 0, ids, texts, vectors)
            info = self.get(name)
            if on_commit is not None:
                on_commit(info)
        return info

    def add(self, name: str, ids: list[str], texts: list[str], vectors: np.ndarray, *, max_documents: int,
            on_commit=None) -> IndexInfo:
        self.tasks._check_writable()
        with self.tasks._write_lock:
            info = self.get(name)
            if vectors.shape[1] != info.dim:
                raise AnytaskError(f"index {name!r} holds {info.dim}-dimensional vectors, these have "
                                   f"{vectors.shape[1]}")
            if info.n_documents + len(ids) > max_documents:
                raise AnytaskError(f"index {name!r} holds {info.n_documents} documents; {len(ids)} more would pass "
                                   f"the limit of {max_documents}: use another index")
            clash = _present(self._conn, name, ids)
            if clash:
                raise AnytaskError(f"document id {clash[0]!r} is already in index {name!r}; nothing was added "
                                   "(delete it first to replace it)")
            start = self._conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM documents WHERE idx = ?",
                                       (name,)).fetchone()[0]
            with self._conn as conn:
                self._insert(conn, name, start, ids, texts, vectors)
                self._bump(conn, name, len(ids))
            info = self.get(name)
            if on_commit is not None:
                on_commit(info)
        return info

    def delete_documents(self, name: str, ids: list[str], *, on_commit=None) -> IndexInfo:
        self.tasks._check_writable()
        with self.tasks._write_lock:
            info = self.get(name)
            present = set(_present(self._conn, name, ids))
            missing = [i for i in ids if i not in present]
            if missing:
                raise IndexNotFound(f"index {name!r} has no document {missing[0]!r}; nothing was deleted")
            if len(present) >= info.n_documents:
                raise AnytaskError(f"deleting every document would leave index {name!r} empty; delete the index "
                                   "instead")
            with self._conn as conn:
                conn.executemany("DELETE FROM documents WHERE idx = ? AND id = ?", [(name, i) for i in present])
                self._bump(conn, name, -len(present))
            info = self.get(name)
            if on_commit is not None:
                on_commit(info)
        return info

    def delete(self, name: str) -> None:
        self.tasks._check_writable()
        with self.tasks._write_lock:
            self.get(name)
            with self._conn as conn:
                conn.execute("DELETE FROM documents WHERE idx = ?", (name,))
                conn.execute("DELETE FROM indexes WHERE name = ?", (name,))

    @staticmethod
    def _insert(conn, name: str, start: int, ids, texts, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        conn.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                         [(name, i, start + s, t, vectors[s].tobytes()) for s, (i, t) in enumerate(zip(ids, texts))])

    @staticmethod
    def _bump(conn, name: str, delta: int) -> None:
        conn.execute("UPDATE indexes SET n_documents = n_documents + ?, version = version + 1, updated = ? "
                     "WHERE name = ?", (delta, time.time(), name))


def _present(conn, name: str, ids: list[str]) -> list[str]:
    found = []
    for i in range(0, len(ids), 500):  # SQLite bounds the number of parameters
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        found += [r[0] for r in conn.execute(f"SELECT id FROM documents WHERE idx = ? AND id IN ({marks})",
                                             [name, *chunk])]
    order = {d: n for n, d in enumerate(ids)}
    return sorted(found, key=order.__getitem__)


__all__ = ["IndexExists", "IndexInfo", "IndexNotFound", "IndexStore"]
