"""Input validation shared by every layer: features, texts, labels. One function per kind, so the
library, the CLI and the service agree on what input is valid and say the same thing about it."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anytask.core.errors import AnytaskError


def check_features(X, *, name: str = "X", n_features: int | None = None, owner: str = "this head") -> np.ndarray:
    """A finite float32 (N, D) array, or an error saying what is wrong and how to fix it."""
    if X is None:
        raise AnytaskError(f"{name} is None; pass an (n_samples, n_features) array of embeddings")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; heads need dense features: call X.toarray() first")
    try:
        arr = np.asarray(X)
    except Exception as e:  # ragged lists and the like
        raise AnytaskError(f"{name} could not be read as a 2-D numeric array: {e}") from e
    if arr.dtype.kind in "OUS":
        if arr.dtype.kind in "US" or (arr.size and isinstance(arr.flat[0], str)):
            raise AnytaskError(f"{name} holds strings; heads take embeddings. Embed texts first "
                               "(anytask.TextClassifier does this for you)")
        try:
            arr = arr.astype(np.float64)
        except TypeError as e:
            raise TypeError(f"{name} is not numeric: {e}") from e
        except ValueError as e:
            raise AnytaskError(f"{name} is not numeric: {e}") from e
    if arr.dtype.kind == "c":
        raise AnytaskError(f"Complex data not supported: {name} is complex; heads take real-valued features")
    if arr.ndim != 2:
        raise AnytaskError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}. Reshape your "
                           "data: a single sample with x.reshape(1, -1)")
    if arr.shape[0] == 0:
        raise AnytaskError(f"{name} is empty (0 samples); a head needs at least one example per class")
    if arr.shape[1] == 0:
        raise AnytaskError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required; "
                           "pass embeddings with at least one dimension")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise AnytaskError(f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]}); "
                           "drop or impute those rows before fitting or predicting")
    if n_features is not None and arr.shape[1] != n_features:
        raise AnytaskError(f"{name} has {arr.shape[1]} features, but {owner} is expecting {n_features} features "
                           "as input (the width it was fitted on); embed inputs with the same backbone")
    return arr


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise AnytaskError("expected a list of texts, got a single string; wrap it in a list: [text]")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        i = bad[0]
        raise AnytaskError(
            f"texts must be strings; item {i} is {type(texts[i]).__name__} ({texts[i]!r:.60}); "
            f"{len(bad)} item(s) are not strings"
        )
    return texts


def check_raw_texts(X, owner: str) -> list[str]:
    """Raw texts for a head that runs the backbone itself: embeddings (a float array) are refused by name."""
    if isinstance(X, np.ndarray) and X.dtype.kind == "f":
        raise AnytaskError(f"{owner} takes raw texts, not embeddings: pass a list of strings")
    return check_texts(X if isinstance(X, str) else list(X))


def check_text_labels(texts: list[str], y) -> tuple[np.ndarray, np.ndarray]:
    """One label per text and at least two classes: ``(classes, label index per text)``, classes sorted."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(texts):
        raise AnytaskError(f"{len(texts)} texts but y has shape {y.shape}; pass one label per text")
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise AnytaskError(f"y has only one class ({classes[0]!r}); a classifier needs examples of at least 2 "
                           "classes")
    return classes, y_idx


def check_input_texts(texts, *, what: str = "texts", limit: int | None = None,
                      max_chars: int | None = None) -> list[str]:
    """Texts a user hands to fit or predict (library, CLI and service alike): a non-empty list of non-blank
    strings, at most ``limit`` of them and ``max_chars`` characters each when given."""
    texts = check_texts(texts)
    if not texts:
        raise AnytaskError(f"{what} is empty; give at least one text")
    if limit is not None and len(texts) > limit:
        raise AnytaskError(f"{len(texts)} {what} in one request; the limit is {limit}: split the request")
    for i, t in enumerate(texts):
        if not t.strip():
            raise AnytaskError(f"{what}[{i}] is empty or blank; every text needs some content (drop the row)")
        if max_chars is not None and len(t) > max_chars:
            raise AnytaskError(f"{what}[{i}] has {len(t)} characters; the limit is {max_chars}")
    return texts
