"""Task streams: an ordered list of tasks, each with train and test features and labels.

- ``synthetic``: Gaussian classes in 32 dimensions, each task its own region and labels, with
  a recurring task at the end (known boundaries; used by the tests).
- ``text``: consecutive datasets of a data root with disjoint label spaces, embedded by the
  frozen backbone: ag_news -> trec -> dbpedia -> banking77 (10 intents) -> financial_phrasebank
  -> ag_news again (recurring).
- ``split-mnist`` / ``permuted-mnist``: the 10,000 MNIST test images of ``../shared/data/vision``
  (pixels scaled to [0, 1]; 80/20 split per task), 5 tasks of 2 digits / 5 pixel permutations
  of 2,000 images each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

STREAMS: Registry = Registry("stream", family="data")


@dataclass(frozen=True)
class StreamTask:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@STREAMS.register("synthetic", reference="none: Gaussian classes the project makes", input="stream",
                  summary="4 tasks of 3 Gaussian classes in 32-d, the first recurring; no data needed")
def synthetic_stream(data_root=None, seed: int = 0, n_tasks: int = 4, classes: int = 3, n: int = 1500, dim: int = 32,
                     recur: bool = True) -> list[StreamTask]:
    rng = np.random.default_rng(seed)
    tasks = []
    for t in range(n_tasks):
        centers = rng.normal(size=(classes, dim)) * 2.0 + rng.normal(size=dim) * 4.0
        y = rng.integers(0, classes, size=n)
        X = (centers[y] + rng.normal(size=(n, dim))).astype(np.float32)
        labels = np.asarray([f"t{t}c{c}" for c in y], dtype=object)
        cut = int(0.8 * n)
        tasks.append(StreamTask(f"task{t}", X[:cut], labels[:cut], X[cut:], labels[cut:]))
    if recur:
        first = tasks[0]
        perm = rng.permutation(len(first.X_train))
        tasks.append(StreamTask(first.name, first.X_train[perm], first.y_train[perm], first.X_test, first.y_test))
    return tasks


TEXT_ORDER = ["ag_news", "trec", "dbpedia", "banking77", "financial_phrasebank", "ag_news"]


@STREAMS.register("text", reference="ag_news, trec, dbpedia, banking77, financial_phrasebank (shared/data/text)",
                  input="stream", needs_backbone=True,
                  summary="consecutive text datasets with disjoint labels, embedded by the frozen backbone")
def text_stream(data_root, *, order: list[str] | None = None, n_train: int = 1000, seed: int = 0,
                backbone: str = "minilm", cache_dir: str | None = None) -> list[StreamTask]:
    from anytask.backbones import Embedder, get_backbone
    from anytask.data.sampling import eval_indices
    from anytask.data.sources import load_task

    embedder = Embedder(get_backbone(backbone), cache_dir=cache_dir, progress=True)
    tasks = []
    for name in order or TEXT_ORDER:
        train, test = load_task(data_root, name)
        if name == "banking77":  # a subset of intents keeps the stream's tasks comparable in size
            keep = set(sorted(set(train.y.tolist()))[:10])
            train = train.subset([i for i, v in enumerate(train.y) if v in keep])
            test = test.subset([i for i, v in enumerate(test.y) if v in keep])
        tr = np.random.default_rng(0).permutation(len(train))[:n_train]  # the SAE pool's order: cached
        train, test = train.subset(tr), test.subset(eval_indices(name, len(test), 1000))
        order_in_task = np.random.default_rng([seed, len(tasks)]).permutation(len(train))
        X = embedder.embed([train.X[i] for i in order_in_task])
        tasks.append(StreamTask(name, X, train.y[order_in_task], embedder.embed(list(test.X)), test.y))
    return tasks


def _mnist(data_root) -> tuple[np.ndarray, np.ndarray]:
    path = Path(data_root) / "vision" / "mnist_test.npz"
    if not path.is_file():
        raise AnytaskError(f"MNIST streams need {path} (the shared benchmark data); use the synthetic stream")
    data = np.load(path)
    return (data["images"].reshape(len(data["images"]), -1) / 255.0).astype(np.float32), data["labels"]


def _split(X, y, name, seed) -> StreamTask:
    perm = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    tr, te = perm[:cut], perm[cut:]
    return StreamTask(name, X[tr], y[tr], X[te], y[te])


@STREAMS.register("split-mnist", reference="Zenke et al. 2017, https://arxiv.org/abs/1703.04200", input="stream",
                  summary="5 tasks of 2 MNIST digits (shared/data/vision)")
def split_mnist(data_root, seed: int = 0) -> list[StreamTask]:
    X, y = _mnist(data_root)
    labels = np.asarray([str(v) for v in y], dtype=object)
    return [_split(X[(y == a) | (y == b)], labels[(y == a) | (y == b)], f"digits {a}/{b}", seed + a)
            for a, b in [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]]


@STREAMS.register("permuted-mnist", reference="Goodfellow et al. 2013, https://arxiv.org/abs/1312.6211",
                  input="stream", summary="5 pixel permutations of 2,000 MNIST images each (shared/data/vision)")
def permuted_mnist(data_root, seed: int = 0, n_tasks: int = 5, n_images: int = 2000) -> list[StreamTask]:
    """Task t sees ``n_images`` of the images (its own random draw) through pixel permutation t."""
    X, y = _mnist(data_root)
    tasks = []
    for t in range(n_tasks):
        perm = np.arange(X.shape[1]) if t == 0 else np.random.default_rng(1000 + t).permutation(X.shape[1])
        rows = np.random.default_rng([seed, t]).choice(len(X), size=min(n_images, len(X)), replace=False)
        labels = np.asarray([f"p{t}:{v}" for v in y[rows]], dtype=object)  # class-incremental over permutations
        tasks.append(_split(X[rows][:, perm], labels, f"permutation {t}", seed + t))
    return tasks


def make_stream(name: str, *, data_root=None, seed: int = 0, reverse: bool = False, **kwargs) -> list[StreamTask]:
    """The tasks of a registered stream (``STREAMS.names()``), optionally in reverse order."""
    build = STREAMS.get(name)
    if name != "synthetic":
        if data_root is None:
            raise AnytaskError(f"the {name} stream needs --data-root (the shared data folder)")
        root = Path(data_root)  # either the shared data folder or its text/ subfolder is accepted
        data_root = (root / "text" if (root / "text").is_dir() else root) if name == "text" else \
            (root.parent if root.name == "text" else root)
    tasks = build(data_root, seed=seed, **kwargs)
    if reverse:  # the second order: reverse the distinct tasks, keep a recurring last task recurring
        names = [t.name for t in tasks]
        recurring = len(names) != len(set(names))
        body = tasks[:-1] if recurring else tasks
        body = body[::-1]
        tasks = body + ([body[0]] if recurring else [])
    return tasks
