"""Content-addressed on-disk cache of embeddings, one SQLite file per backbone identity.

Key: SHA-256 of (backbone identity, exact text); the identity includes a hash of the
backbone's weights, its token limit and pooling, so changing any of them can never
return a stale vector. Each row stores the vector and a keyed BLAKE2b checksum; a row
that fails it (bit rot, a torn write, a hand edit) is reported and recomputed. Writes
are SQLite transactions in WAL mode, so two processes filling the same cache at once
never see or leave a half-written entry. A file that is not a database at all is
moved aside (``*.corrupt-<time>``) and a fresh cache is started.

Where it lives: the ``directory`` argument, else ``$ANYTASK_CACHE_DIR``, else
``$ANYTASK_HOME/cache``, else ``$XDG_CACHE_HOME/anytask`` (``~/.cache/anytask``).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

_SCHEMA = ("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL, chk BLOB NOT NULL, "
           "used REAL NOT NULL DEFAULT 0)")
_CHUNK = 500  # SQLite host-parameter batches
_TOUCH_AFTER = 3600.0  # a hit refreshes its last-used time at most once an hour (reads stay reads)


def default_max_bytes() -> int:
    """Each cache file's size cap: ``$ANYTASK_CACHE_MAX_MB`` (default 4096 MB)."""
    raw = os.environ.get("ANYTASK_CACHE_MAX_MB", "4096")
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"ANYTASK_CACHE_MAX_MB must be a number of megabytes, got {raw!r}") from None
    return int(mb * 1_000_000)


def default_cache_dir() -> Path:
    if os.environ.get("ANYTASK_CACHE_DIR"):
        return Path(os.environ["ANYTASK_CACHE_DIR"]).expanduser()
    if os.environ.get("ANYTASK_HOME"):
        return Path(os.environ["ANYTASK_HOME"]).expanduser() / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "anytask"


def _checksum(key: bytes, vec: bytes) -> bytes:
    return hashlib.blake2b(vec, key=key[:64], digest_size=16).digest()


class EmbeddingCache:
    """Get/put float32 vectors by (backbone identity, text)."""

    def __init__(self, identity: str, dim: int, directory: str | os.PathLike | None = None,
                 max_bytes: int | None = None) -> None:
        self.identity = identity
        self.dim = dim
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self._puts = 0
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identity.split("|")[0])[:40]
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        self.path = self.directory / f"{slug}-{digest}.sqlite"
        self._local = threading.local()
        self.n_corrupt = 0

    # -- connection --------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        if "used" not in {row[1] for row in conn.execute("PRAGMA table_info(emb)")}:  # a cache from before LRU
            conn.execute("ALTER TABLE emb ADD COLUMN used REAL NOT NULL DEFAULT 0")
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as e:  # not a database: move it aside, start over
                self._quarantine(e)
                conn = self._connect()
            self._local.conn = conn
        return conn

    def _quarantine(self, error: Exception) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        warnings.warn(f"embedding cache {self.path} is unreadable ({error}); moved to {aside}, starting fresh",
                      stacklevel=3)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.replace(p, str(aside) + suffix)
        self._local.conn = None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- keys ------------------------------------------------------------------------------
    def key(self, text: str) -> bytes:
        h = hashlib.sha256(self.identity.encode())
        h.update(b"\0")
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()

    # -- get / put --------------------------------------------------------------------------
    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Vectors for the keys present and intact; corrupt rows are counted and left out."""
        found: dict[bytes, np.ndarray] = {}
        nbytes = 4 * self.dim
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                stale, now = [], time.time()
                for key, vec, chk, used in self._conn.execute(
                        f"SELECT key, vec, chk, used FROM emb WHERE key IN ({marks})", chunk):
                    if len(vec) != nbytes or _checksum(key, vec) != chk:
                        self.n_corrupt += 1
                        continue
                    found[bytes(key)] = np.frombuffer(vec, dtype=np.float32)
                    if used < now - _TOUCH_AFTER:
                        stale.append(key)
                if stale:  # least-recently-used order for eviction; best effort (a busy or read-only file is fine)
                    try:
                        self._conn.executemany("UPDATE emb SET used = ? WHERE key = ?", [(now, k) for k in stale])
                    except sqlite3.OperationalError:
                        pass
        except sqlite3.DatabaseError as e:
            self._quarantine(e)
            return {}
        if self.n_corrupt and not getattr(self, "_warned", False):
            self._warned = True
            warnings.warn(f"embedding cache {self.path}: {self.n_corrupt} corrupted entr(ies) failed their "
                          "checksum and will be recomputed", stacklevel=3)
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        rows = []
        for key, vec in items:
            raw = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
            if len(raw) != 4 * self.dim:
                raise ValueError(f"cache for dim {self.dim} got a vector of {len(raw) // 4}")
            rows.append((key, raw, _checksum(key, raw), time.time()))
        for attempt in range(2):
            try:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO emb (key, vec, chk, used) VALUES (?, ?, ?, ?)", rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._puts += 1
                if self._puts % 8 == 1:  # the size check is a few PRAGMAs: not on every write
                    self.prune(self.max_bytes)
                return
            except sqlite3.DatabaseError as e:
                if attempt or isinstance(e, sqlite3.OperationalError):
                    raise
                self._quarantine(e)

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0]

    def live_bytes(self) -> int:
        """Bytes the cache's rows occupy in the file (freed pages are reused, not counted)."""
        return _live_bytes(self._conn)

    def prune(self, max_bytes: int) -> int:
        """Evict the least recently used rows down to ~90 % of ``max_bytes``; returns how many rows went.
        Evicted texts are simply embedded again when next asked for."""
        return _prune(self._conn, max_bytes)


def _live_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    return pages * conn.execute("PRAGMA page_size").fetchone()[0]


def _prune(conn: sqlite3.Connection, max_bytes: int) -> int:
    size = _live_bytes(conn)
    if size <= max_bytes:
        return 0
    rows = conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0]
    drop = min(rows, max(1, int(rows * (1 - 0.9 * max_bytes / size))))
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM emb WHERE key IN (SELECT key FROM emb ORDER BY used LIMIT ?)", (drop,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return drop


def cache_files(directory: str | os.PathLike | None = None) -> list[Path]:
    """The cache files (one per backbone identity) in ``directory`` (default: the default cache folder)."""
    folder = Path(directory).expanduser() if directory else default_cache_dir()
    return sorted(folder.glob("*.sqlite")) if folder.is_dir() else []


def file_stats(path: Path) -> dict:
    """Rows and bytes of one cache file, read without knowing its backbone."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        return {"file": path.name, "rows": conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0],
                "bytes": _live_bytes(conn), "file_bytes": path.stat().st_size}
    finally:
        conn.close()


def prune_file(path: Path, max_bytes: int) -> int:
    """Evict least-recently-used rows of one cache file down to ~90 % of ``max_bytes``, then compact the file."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        dropped = _prune(conn, max_bytes)
        if dropped:
            conn.execute("VACUUM")
        return dropped
    finally:
        conn.close()
