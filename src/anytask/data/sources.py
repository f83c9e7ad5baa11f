"""Where tasks come from: a data root of task folders, scikit-learn's bundled sets, HF datasets.

A data root is laid out as ``<root>/<task>/{train,test}.jsonl`` (the layout of
``../shared/data/text``); ``default_data_root()`` is ``$ANYTASK_DATA_ROOT`` if set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from anytask.data.files import LabeledData, read_table
from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

DATASETS: Registry = Registry("dataset source", family="data")

# Natural-language names for terse labels of the shared text tasks, used by label-similarity
# heads (zero_shot). Labels not listed are used as written, with '_' read as a space.
LABEL_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "trec": {"ABBR": "abbreviation", "DESC": "description or definition", "ENTY": "entity or thing",
             "HUM": "person or human", "LOC": "location or place", "NUM": "number or quantity"},
    "sms_spam": {"ham": "normal personal message", "spam": "spam advertisement"},
    "youtube": {"ham": "normal comment", "spam": "spam advertisement"},
    "subj": {"objective": "objective plot summary", "subjective": "subjective opinion"},
}


def default_data_root() -> Path | None:
    env = os.environ.get("ANYTASK_DATA_ROOT")
    return Path(env).expanduser() if env else None


def shared_data_root() -> Path | None:
    """The shared benchmark data folder (text/, graph/, vision/, retrieval/): ``$ANYTASK_SHARED_DATA``, else
    ``../shared/data`` beside a source checkout, else None."""
    env = os.environ.get("ANYTASK_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    beside = Path(__file__).resolve().parents[4] / "shared" / "data"
    return beside if beside.is_dir() else None


def list_tasks(root: str | os.PathLike) -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise AnytaskError(f"data root {root} is not a folder; pass --data-root with <task>/train.jsonl inside")
    return sorted(p.parent.name for p in root.glob("*/train.jsonl"))


def load_task(root: str | os.PathLike, name: str, *, text_column: str = "text",
              label_column: str = "label") -> tuple[LabeledData, LabeledData]:
    """``(train, test)`` of task ``name`` under ``root``."""
    folder = Path(root) / name
    if not (folder / "train.jsonl").is_file():
        import difflib

        known = list_tasks(root)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise AnytaskError(f"no task {name!r} under {root} (no {folder / 'train.jsonl'}).{hint} "
                           f"Tasks there: {', '.join(known) or 'none'}.")
    parts = [read_table(folder / f"{split}.jsonl", text_column=text_column, label_column=label_column,
                        name=f"{name}/{split}") for split in ("train", "test")]
    return parts[0], parts[1]


SKLEARN_DATASETS = ("digits", "wine", "breast_cancer", "iris")


def sklearn_dataset(name: str, *, test_size: float = 0.3) -> tuple[LabeledData, LabeledData]:
    """A numeric task shipped with scikit-learn, split once (stratified, seed 0). No backbone."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name not in SKLEARN_DATASETS:
        raise AnytaskError(f"unknown scikit-learn dataset {name!r}; choose one of {', '.join(SKLEARN_DATASETS)}")
    bunch = getattr(datasets, f"load_{name}")()
    X = bunch.data.astype(np.float32)
    y = np.asarray([str(bunch.target_names[t]) for t in bunch.target], dtype=object)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, stratify=y, random_state=0)
    return LabeledData(Xtr, ytr, f"{name}/train"), LabeledData(Xte, yte, f"{name}/test")


def hf_dataset(name: str, *, split: str = "train", text_column: str = "text", label_column: str = "label",
               config: str | None = None, limit: int | None = None) -> LabeledData:
    """A text task from the Hugging Face hub via ``datasets`` (needs the package and a network)."""
    try:
        import datasets
    except ImportError as e:
        raise AnytaskError("loading from the Hugging Face hub needs `pip install datasets`") from e
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # the hub raises many types: connection, missing repo, bad split
        raise AnytaskError(f"could not load {name!r} ({split}) through `datasets`: {e}. "
                           "Without network access, export it to JSONL and use a local file.") from e
    for column in (text_column, label_column):
        if column not in ds.column_names:
            raise AnytaskError(f"{name} has no column {column!r}; columns: {', '.join(ds.column_names)}")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    labels = ds[label_column]
    feature = ds.features.get(label_column)
    if hasattr(feature, "int2str"):
        labels = [feature.int2str(v) for v in labels]
    return LabeledData(list(ds[text_column]), np.asarray(labels, dtype=object), f"{name}/{split}")


# -- the dataset registry: a task spec is ``<source>:<name>``, or a bare task folder name -----------

@DATASETS.register("folder", reference="JSONL/CSV/TSV task folders: <data-root>/<task>/{train,test}.jsonl",
                   input="files", summary="<task> (no prefix): a task folder under --data-root / $ANYTASK_DATA_ROOT")
def _folder(name: str, data_root=None) -> tuple[LabeledData, LabeledData]:
    root = data_root if data_root is not None else default_data_root()
    if root is None:
        raise AnytaskError(f"task {name!r} needs --data-root (a folder with {name}/train.jsonl); "
                           "without data use sklearn:digits or synthetic:topics")
    root = Path(root)
    if not (root / name / "train.jsonl").is_file() and (root / "text" / name / "train.jsonl").is_file():
        root = root / "text"  # the shared data folder given where its text/ subfolder was meant: both work
    return load_task(root, name)


@DATASETS.register("sklearn", reference="scikit-learn's bundled datasets (Pedregosa et al. 2011)", input="files",
                   summary="sklearn:digits|wine|breast_cancer|iris: numeric features shipped with scikit-learn")
def _sklearn(name: str, data_root=None) -> tuple[LabeledData, LabeledData]:
    return sklearn_dataset(name)


@DATASETS.register("synthetic", reference="none: six-topic sentences the project makes", input="files",
                   summary="synthetic:topics: a six-topic text task made on the fly (no data needed)")
def _synthetic(name: str, data_root=None) -> tuple[LabeledData, LabeledData]:
    from anytask.data.synthetic import make_topic_task

    if name != "topics":
        raise AnytaskError(f"unknown synthetic task {name!r}; the synthetic source has: topics")
    return make_topic_task(60)


@DATASETS.register("hf", reference="Hugging Face datasets (Lhoest et al. 2021)", input="files",
                   summary="hf:<dataset>: the train and test splits through `datasets` (needs it and a network)")
def _hf(name: str, data_root=None) -> tuple[LabeledData, LabeledData]:
    return hf_dataset(name, split="train"), hf_dataset(name, split="test")


@DATASETS.register("features", reference="none: a .npz of precomputed features (anytask graph embed writes one)",
                   input="files", summary="features:<file.npz>: X and y, with train_idx / test_idx (else a fixed "
                   "stratified 70/30 split)")
def _features(name: str, data_root=None) -> tuple[LabeledData, LabeledData]:
    path = Path(name).expanduser()
    if not path.is_file():
        raise AnytaskError(f"features:{name}: no such file (write one with anytask graph embed --out FILE.npz)")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AnytaskError(f"features:{name}: not a readable .npz ({e})") from e
    if "X" not in z.files or "y" not in z.files:
        raise AnytaskError(f"features:{name} needs arrays X (N, D) and y (N,); it has {', '.join(z.files)}")
    X, y = np.asarray(z["X"], np.float32), np.asarray(z["y"])
    if "train_idx" in z.files and "test_idx" in z.files:
        tr, te = z["train_idx"], z["test_idx"]
    else:
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=y)
    return LabeledData(X[tr], y[tr], f"{path.stem}/train"), LabeledData(X[te], y[te], f"{path.stem}/test")


def load_dataset(spec: str, *, data_root=None) -> tuple[LabeledData, LabeledData]:
    """``(train, test)`` for a task spec: ``sklearn:digits``, ``synthetic:topics``, ``hf:<name>`` or a
    task folder name under ``data_root`` (default ``$ANYTASK_DATA_ROOT``)."""
    source, sep, name = str(spec).partition(":")
    if not sep:
        return DATASETS.get("folder")(spec, data_root)
    if not name:
        raise AnytaskError(f"task spec {spec!r} has nothing after the colon; e.g. sklearn:digits")
    return DATASETS.get(source)(name, data_root)
