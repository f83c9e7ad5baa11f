"""Read labelled rows from JSONL or CSV/TSV files, with errors that name the file, line and fix."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anytask.core.errors import AnytaskError


@dataclass(frozen=True)
class LabeledData:
    """Inputs (a list of texts, or an (N, F) array) and their labels (N,)."""

    X: list | np.ndarray
    y: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise AnytaskError(f"{self.name or 'data'}: {len(self.X)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_text(self) -> bool:
        return not isinstance(self.X, np.ndarray)

    def subset(self, idx) -> "LabeledData":
        idx = np.asarray(idx, dtype=int)
        X = self.X[idx] if isinstance(self.X, np.ndarray) else [self.X[i] for i in idx]
        return LabeledData(X, self.y[idx], self.name)


def read_text_utf8(path: Path) -> str:
    """A file's text, or an error naming the first byte that is not UTF-8 and how to re-encode."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise AnytaskError(
            f"{path} is not UTF-8: byte {raw[e.start]:#04x} at offset {e.start} (line {line}) cannot be decoded. "
            f"Re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}"
        ) from None


def read_table(path: str | os.PathLike, *, text_column: str = "text", label_column: str = "label",
               name: str = "") -> LabeledData:
    """Rows of a ``.jsonl`` / ``.json`` (one object per line) or ``.csv`` / ``.tsv`` file."""
    path = Path(path)
    if not path.is_file():
        raise AnytaskError(f"data file {path} does not exist")
    content = read_text_utf8(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        rows = []
        # split on "\n" only: str.splitlines() would also break at U+2028, U+0085, ... inside strings
        for lineno, line in enumerate(content.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise AnytaskError(f"{path}, line {lineno}: not valid JSON ({e.msg}); expected one object per line") from None
            if not isinstance(row, dict):
                raise AnytaskError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append((lineno, row))
    elif suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(content), delimiter="\t" if suffix == ".tsv" else ",")
        rows = [(i + 2, row) for i, row in enumerate(reader)]
    else:
        raise AnytaskError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .tsv")
    if not rows:
        raise AnytaskError(f"{path} has no rows; a task needs labelled examples")
    texts, labels = [], []
    for lineno, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                found = ", ".join(sorted(map(str, row))) or "none"
                flag = "--text-column" if column == text_column else "--label-column"
                raise AnytaskError(
                    f"{path}, line {lineno}: no {column!r} column (columns found: {found}); "
                    f"name the right one with {flag}"
                )
            value = row[column]
            if value is None or (isinstance(value, str) and not value.strip()):
                raise AnytaskError(f"{path}, line {lineno}: {column!r} is {'null' if value is None else 'empty'}; "
                                   f"every row needs a {'text' if column == text_column else 'label'} (fix or drop "
                                   "the row)")
        if not isinstance(row[text_column], str):
            raise AnytaskError(f"{path}, line {lineno}: {text_column!r} must be a string, got {row[text_column]!r:.60}")
        texts.append(row[text_column])
        labels.append(row[label_column])
    y = np.asarray(labels)
    if y.dtype.kind not in "iub":
        y = np.asarray([str(v) for v in labels], dtype=object)
    return LabeledData(texts, y, name or path.stem)
