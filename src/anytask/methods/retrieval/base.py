"""The retrieval family's contract: vector indexes (``INDEXES``), scikit-learn style.

An index holds unit vectors with ids: ``fit(X, ids)`` replaces its contents, ``add(X, ids)`` and
``remove(ids)`` change them without a rebuild, ``search(Q, k)`` returns the cosine similarities and
ids of each query's ``k`` nearest vectors, best first. Ids are strings or integers, unique. Saved
with ``anytask.core.io`` (atomic, checksummed folders).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.registry import Registry


def _discover() -> None:
    import anytask.methods.retrieval  # noqa: F401  (registers every index)


INDEXES = Registry("index", family="retrieval", discover=_discover)


def unit_rows(X, *, what: str = "X", dim: int | None = None) -> np.ndarray:
    """A 2-D finite float32 array with every row scaled to unit length (zero rows are an error)."""
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError):
        raise AnytaskError(f"{what} must be a 2-D array of numbers (one vector per row)") from None
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise AnytaskError(f"{what} has shape {X.shape}; pass a non-empty 2-D array, one vector per row")
    if dim is not None and X.shape[1] != dim:
        raise AnytaskError(f"{what} has {X.shape[1]} dimensions but the index holds {dim}-dimensional vectors; "
                           "embed it with the index's backbone")
    if not np.isfinite(X).all():
        raise AnytaskError(f"{what} holds NaN or inf")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise AnytaskError(f"{what} has an all-zero row (row {int(np.nonzero(norms[:, 0] == 0)[0][0])}); a zero vector "
                           "has no direction to compare")
    return X / norms


def check_ids(ids, n: int, *, existing=None) -> list:
    """``n`` unique ids (strings or integers, not bools), none of them in ``existing``."""
    ids = list(range(n)) if ids is None else list(ids.tolist() if isinstance(ids, np.ndarray) else ids)
    if len(ids) != n:
        raise AnytaskError(f"{n} vectors but {len(ids)} ids; give one id per vector")
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (str, int)):
            raise AnytaskError(f"id {i!r} is a {type(i).__name__}; ids are strings or integers")
    if len(set(ids)) != n:
        seen, dup = set(), None
        for i in ids:
            if i in seen:
                dup = i
                break
            seen.add(i)
        raise AnytaskError(f"duplicate id {dup!r}; every document needs its own id")
    clash = [i for i in ids if existing is not None and i in existing]
    if clash:
        raise AnytaskError(f"id {clash[0]!r} is already in the index; remove it first or use a new id")
    return ids


class BaseIndex(Pretrained, BaseEstimator):
    """Cosine nearest-neighbour index over unit vectors with ids."""

    def fit(self, X, ids=None) -> "BaseIndex":
        X = unit_rows(X)
        self.ids_ = check_ids(ids, len(X))
        self.dim_ = int(X.shape[1])
        self._build(X)
        self.positions_ = {d: i for i, d in enumerate(self.ids_)}
        return self

    def add(self, X, ids) -> "BaseIndex":
        check_is_fitted(self, "ids_")
        X = unit_rows(X, dim=self.dim_)
        ids = check_ids(ids, len(X), existing=self.positions_)
        self._add(X, ids)
        return self

    def remove(self, ids) -> "BaseIndex":
        check_is_fitted(self, "ids_")
        ids = list(ids)
        unknown = [i for i in ids if i not in self.positions_]
        if unknown:
            raise AnytaskError(f"id {unknown[0]!r} is not in the index; nothing was removed")
        if len(set(ids)) == len(self.ids_):
            raise AnytaskError("removing every document would leave an empty index; build a new one instead")
        self._remove(set(ids))
        return self

    def search(self, Q, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(n_queries, k)``: cosine similarities and ids, best first."""
        check_is_fitted(self, "ids_")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise AnytaskError(f"k={k!r}: ask for at least 1 neighbour")
        if k > len(self.ids_):
            raise AnytaskError(f"k={k} but the index holds {len(self.ids_)} documents; ask for at most that many")
        Q = unit_rows(Q, what="the queries", dim=self.dim_)
        scores, pos = self._search(Q, int(k))
        ids = np.empty(pos.shape, dtype=object)
        ids[:] = [[self.ids_[p] for p in row] for row in pos]
        return scores, ids

    def __len__(self) -> int:
        return len(getattr(self, "ids_", ()))

    # -- what subclasses implement ------------------------------------------------------------------
    @abstractmethod
    def _build(self, X: np.ndarray) -> None: ...

    @abstractmethod
    def _add(self, X: np.ndarray, ids: list) -> None:
        """Append the vectors and extend ``ids_`` / ``positions_``."""

    @abstractmethod
    def _remove(self, ids: set) -> None:
        """Drop the ids' vectors and rebuild ``ids_`` / ``positions_``."""

    @abstractmethod
    def _search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and positions in ``ids_`` ``(n, k)``, best first."""


# -- rankers: score queries against a cached target space ------------------------------------------------

RANKERS = Registry("ranker", family="retrieval", discover=_discover)


class BaseRanker(Pretrained, BaseEstimator):
    """A ranker over texts: ``fit(queries, targets)`` learns from linked pairs (a ranker that learns nothing
    just checks them), ``set_targets(texts)`` caches the target space once, ``score(queries)`` gives every
    query's score for every cached target ``(n_queries, n_targets)``, ``search(queries, k)`` the best ``k``."""

    def set_targets(self, texts) -> "BaseRanker":
        from anytask.core.validation import check_input_texts

        self.targets_ = check_input_texts(texts, what="the targets")
        self._cache_targets(self.targets_)
        return self

    def score(self, queries) -> np.ndarray:
        from anytask.core.validation import check_input_texts

        check_is_fitted(self, "targets_")
        return self._score(check_input_texts(queries, what="the queries"))

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, positions)`` in ``targets_``, each ``(n_queries, k)``, best first."""
        check_is_fitted(self, "targets_")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= len(self.targets_):
            raise AnytaskError(f"k={k!r}: ask for 1 to {len(self.targets_)} targets (the cached target space)")
        S = self.score(queries)
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(S, top, axis=1), top

    @abstractmethod
    def _cache_targets(self, texts: list[str]) -> None: ...

    @abstractmethod
    def _score(self, queries: list[str]) -> np.ndarray: ...


class TaskRanker(BaseRanker):
    """A ranker trained on named tasks (``tasks_``, as ``generalist._check_task`` builds them) that embeds texts as
    unit vectors (``embed``): it classifies by the nearest label name and ranks by cosine to cached targets."""

    @abstractmethod
    def embed(self, texts) -> np.ndarray: ...

    def predict(self, task: str | None, texts, labels=None) -> np.ndarray:
        """Labels of a trained classification ``task``, or (``task=None``) the best of ``labels``, any names."""
        from anytask.core.validation import check_input_texts

        check_is_fitted(self, "tasks_")
        if task is not None:
            if task not in self.tasks_ or self.tasks_[task]["kind"] != "classify":
                known = [n for n, t in self.tasks_.items() if t["kind"] == "classify"]
                raise AnytaskError(f"no classification task {task!r}; trained: {known}, or pass task=None and labels")
            classes, candidates = self.tasks_[task]["classes"], self.tasks_[task]["candidates"]
        else:
            classes = candidates = check_input_texts(labels, what="labels")
        S = self.embed(texts) @ self.embed(candidates).T
        return np.asarray(classes, dtype=object)[S.argmax(1)]

    def _cache_targets(self, texts: list[str]) -> None:
        self.target_vectors_ = self.embed(texts)

    def _score(self, queries: list[str]) -> np.ndarray:
        return self.embed(queries) @ self.target_vectors_.T


def check_pairs(queries, targets) -> tuple[list[str], list[str]]:
    """Linked (query, target) text pairs: two equal-length lists of non-empty strings."""
    from anytask.core.validation import check_input_texts

    queries = check_input_texts(queries, what="the training queries")
    targets = check_input_texts(targets, what="the training targets")
    if len(queries) != len(targets):
        raise AnytaskError(f"{len(queries)} queries but {len(targets)} targets; give one target per query (repeat "
                           "a query to link it to several targets)")
    return queries, targets
