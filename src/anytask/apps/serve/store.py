"""Durable task registry for the service: SQLite (WAL) for tasks and examples, heads as folders.

A task is created in this order: fit the head, write its folder atomically
(``heads/<name>/v<version>``), then commit one SQLite transaction that inserts the task row
and its examples. The row is the acknowledgement: a crash before the commit leaves at most
an orphan head folder (removed at the next start), never a row without its head. Adding
examples writes ``v<version+1>`` first and then moves the row to it in one transaction;
the old folder is removed only after that commit. Names are checked against a strict
pattern, so a task's folder can never lie outside ``home``.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


from anytask.core import io
from anytask.core.errors import AnytaskError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY, head TEXT NOT NULL, head_params TEXT NOT NULL, backbone TEXT NOT NULL,
    classes TEXT NOT NULL, n_examples INTEGER NOT NULL, version INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    task TEXT NOT NULL REFERENCES tasks(name) ON DELETE CASCADE, seq INTEGER NOT NULL,
    text TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (task, seq)
);
"""


class TaskNotFound(AnytaskError):
    pass


class TaskExists(AnytaskError):
    pass


class HeadUnavailable(Exception):
    """A stored head that cannot be loaded (damaged on disk): a server fault, not the caller's mistake."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name, self.detail = name, detail


@dataclass(frozen=True)
class TaskInfo:
    name: str
    head: str
    head_params: dict
    backbone: str
    classes: list[str]
    n_examples: int
    version: int
    created: float
    updated: float


def check_name(name: str, *, what: str = "task") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:  # fullmatch: "$" lets "a\n" in
        raise AnytaskError(f"invalid {what} name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
                           "starting with a letter or digit")
    return name


SCHEMA_VERSION = 1  # PRAGMA user_version of registry.sqlite


class TaskStore:
    """The registry of one ``home`` folder. One process at a time may write to a home: the writer holds an
    exclusive lock on ``home/.writer.lock`` (a second writer is refused with a message); ``read_only``
    stores take no lock, never clean up and refuse every write."""

    def __init__(self, home: str | Path, *, read_only: bool = False) -> None:
        self.home = Path(home).expanduser().resolve()
        self.heads_dir = self.home / "heads"
        self.db_path = self.home / "registry.sqlite"
        self.read_only = read_only
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._lock_file = None
        if read_only:
            if not self.db_path.is_file():
                raise AnytaskError(f"{self.home} has no registry.sqlite to serve read-only; start a writer first")
        else:
            self.home.mkdir(parents=True, exist_ok=True)
            self._lock_file = _acquire_writer_lock(self.home)
            if not self.db_path.exists() and self.heads_dir.is_dir() and any(self.heads_dir.iterdir()):
                self.close()
                raise AnytaskError(f"{self.home} holds head folders but no registry.sqlite: refusing to start (a new "
                                   "registry would delete them all as orphans). Restore registry.sqlite, or move "
                                   f"{self.heads_dir} away to start with no tasks")
            self.heads_dir.mkdir(parents=True, exist_ok=True)
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AnytaskError(f"{self.db_path} has registry schema {version}, newer than this anytask's "
                                   f"{SCHEMA_VERSION}: upgrade anytask")
            if not read_only:
                with self._conn as conn:
                    conn.executescript(_SCHEMA)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._conn.execute("SELECT COUNT(*) FROM tasks").fetchone()
        except sqlite3.DatabaseError as e:
            self.close()
            raise AnytaskError(f"{self.db_path} is not a readable task registry ({e}); restore it from a backup, or "
                               "move it and the heads/ folder away to start with no tasks") from None
        if not read_only:
            self.remove_orphans()  # safe: this process holds the writer lock, so no create is in flight

    def close(self) -> None:
        """Close this thread's connection and release the writer lock (also done when the process ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    def _check_writable(self) -> None:
        if self.read_only:
            raise AnytaskError("this server is read-only: it serves the tasks it has and changes none")

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
                conn.execute("PRAGMA busy_timeout=60000")
                self._local.conn = conn
                return conn
            conn = sqlite3.connect(self.db_path, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged task survives power loss too
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    # -- paths ----------------------------------------------------------------------------------
    def head_path(self, name: str, version: int) -> Path:
        path = (self.heads_dir / check_name(name) / f"v{version}").resolve()
        if self.heads_dir not in path.parents:
            raise AnytaskError(f"task name {name!r} escapes the home folder")
        return path

    def remove_orphans(self) -> int:
        """Delete head folders that no committed task row points at (left by a crash)."""
        live = {(r[0], r[1]) for r in self._conn.execute("SELECT name, version FROM tasks")}
        removed = 0
        for task_dir in self.heads_dir.iterdir():
            for version_dir in task_dir.iterdir() if task_dir.is_dir() else []:
                keep = version_dir.name.startswith("v") and (task_dir.name, _int(version_dir.name[1:])) in live
                if not keep:
                    shutil.rmtree(version_dir, ignore_errors=True)
                    removed += 1
            if task_dir.is_dir() and not any(task_dir.iterdir()):
                task_dir.rmdir()
        return removed

    # -- reads ----------------------------------------------------------------------------------
    def _info(self, row) -> TaskInfo:
        return TaskInfo(row[0], row[1], json.loads(row[2]), row[3], json.loads(row[4]), row[5], row[6], row[7], row[8])

    def get(self, name: str) -> TaskInfo:
        row = self._conn.execute("SELECT * FROM tasks WHERE name = ?", (check_name(name),)).fetchone()
        if row is None:
            raise TaskNotFound(f"no task named {name!r}; GET /v1/tasks lists the tasks")
        return self._info(row)

    def get_many(self, names: list[str]) -> list[TaskInfo]:
        """Several tasks in one query, in the order asked; an unknown name is an error."""
        for name in names:
            check_name(name)
        marks = ",".join("?" * len(names))
        found = {r[0]: self._info(r) for r in self._conn.execute(f"SELECT * FROM tasks WHERE name IN ({marks})", names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise TaskNotFound(f"no task named {missing[0]!r}; GET /v1/tasks lists the tasks")
        return [found[n] for n in names]

    def exists(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM tasks WHERE name = ?", (check_name(name),)).fetchone() is not None

    def list(self) -> list[TaskInfo]:
        return [self._info(r) for r in self._conn.execute("SELECT * FROM tasks ORDER BY name")]

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]

    def examples(self, name: str) -> tuple[list[str], list[str]]:
        rows = self._conn.execute("SELECT text, label FROM examples WHERE task = ? ORDER BY seq",
                                  (check_name(name),)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def load_head(self, info: TaskInfo):
        try:
            return io.load(self.head_path(info.name, info.version))
        except AnytaskError as e:
            raise HeadUnavailable(info.name, str(e)) from None

    # -- writes ---------------------------------------------------------------------------------
    def create(self, name: str, head_name: str, head_params: dict, backbone: str, head, texts, labels,
               *, max_tasks: int | None = None) -> TaskInfo:
        check_name(name)
        self._check_writable()
        with self._write_lock:  # checks and writes under one lock: racing creates cannot pass a limit
            if self._conn.execute("SELECT 1 FROM tasks WHERE name = ?", (name,)).fetchone():
                raise TaskExists(f"a task named {name!r} already exists; delete it first or add examples to it")
            if max_tasks is not None and self.count() >= max_tasks:
                raise AnytaskError(f"the server holds its limit of {max_tasks} tasks; delete one first")
            io.save(head, self.head_path(name, 1))
            now = time.time()
            classes = [str(c) for c in getattr(head, "classes_", [])]  # a score head has none
            conn = self._conn
            with conn:  # one transaction: the row and its examples, or nothing
                conn.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                             (name, head_name, json.dumps(head_params), backbone, json.dumps(classes),
                              len(texts), now, now))
                conn.executemany("INSERT INTO examples VALUES (?, ?, ?, ?)",
                                 [(name, i, t, str(y)) for i, (t, y) in enumerate(zip(texts, labels))])
        return self.get(name)

    def replace_head(self, info: TaskInfo, head, new_texts, new_labels) -> TaskInfo:
        """Commit added examples and the head refitted on all examples (version + 1)."""
        self._check_writable()
        with self._write_lock:
            current = self.get(info.name)
            if current.version != info.version:
                raise AnytaskError(f"task {info.name!r} changed while examples were being added; retry")
            version = info.version + 1
            io.save(head, self.head_path(info.name, version))
            conn = self._conn
            with conn:
                conn.executemany("INSERT INTO examples VALUES (?, ?, ?, ?)",
                                 [(info.name, info.n_examples + i, t, str(y))
                                  for i, (t, y) in enumerate(zip(new_texts, new_labels))])
                conn.execute("UPDATE tasks SET version = ?, n_examples = ?, classes = ?, updated = ? WHERE name = ?",
                             (version, info.n_examples + len(new_texts),
                              json.dumps([str(c) for c in getattr(head, "classes_", [])]),
                              time.time(), info.name))
            shutil.rmtree(self.head_path(info.name, info.version), ignore_errors=True)
        return self.get(info.name)

    def delete(self, name: str) -> None:
        self._check_writable()
        with self._write_lock:
            info = self.get(name)
            with self._conn as conn:
                conn.execute("DELETE FROM examples WHERE task = ?", (name,))
                conn.execute("DELETE FROM tasks WHERE name = ?", (name,))
            shutil.rmtree(self.heads_dir / info.name, ignore_errors=True)


def _acquire_writer_lock(home: Path):
    """An exclusive, non-blocking flock on ``home/.writer.lock``, or an error naming the holder."""
    import fcntl
    import os

    handle = open(home / ".writer.lock", "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AnytaskError(f"{home} is being written by {holder}; one writer per home: stop it, or serve this home "
                           "with --read-only") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


__all__ = ["TaskExists", "TaskInfo", "TaskNotFound", "TaskStore", "check_name"]
