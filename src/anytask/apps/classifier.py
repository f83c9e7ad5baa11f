"""TextClassifier: the raw-input estimator — frozen backbone + embedding cache + any head.

``TextClassifier().fit(texts, labels).predict(new_texts)`` (the default head is ``auto``, which
chooses among the fast heads by cross-validation on the labelled examples). The
backbone is shared and never modified; only the head is fitted. Saved as a folder
holding the head's tensors and the backbone's identity (name + weights hash), which
is checked again before the loaded classifier embeds anything.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts


class TextClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, *, backbone: str = "minilm", head: str = "auto", head_params: dict | None = None,
                 cache_dir: str | None = None, use_cache: bool = True) -> None:
        self.backbone = backbone
        self.head = head
        self.head_params = head_params
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    def _embedder(self):
        from anytask.backbones import get_embedder

        return get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache)

    def embed(self, texts) -> np.ndarray:
        expected = getattr(self, "backbone_identity_", None)
        if expected is not None and self.use_cache and hasattr(getattr(self, "head_", None), "n_features_in_"):
            from anytask.backbones.embedder import cached_embeddings

            # a fitted classifier knows its backbone's identity: texts already in the cache need no model load
            hit = cached_embeddings(expected, self.head_.n_features_in_, texts, cache_dir=self.cache_dir)
            if hit is not None:
                return hit
        embedder = self._embedder()
        if expected is not None and embedder.backbone.identity != expected:
            raise AnytaskError(f"this classifier was fitted with backbone {expected}, but {self.backbone!r} "
                               f"now resolves to {embedder.backbone.identity}; refit it")
        return embedder.embed(texts)

    def _make_head(self):
        from anytask.methods.heads import create_head_for

        from anytask.methods.heads import HEADS

        params = dict(self.head_params or {})
        if "use_cache" in HEADS.get(self.head)().get_params(deep=False):  # heads that embed raw texts themselves
            params.setdefault("use_cache", self.use_cache)
        return create_head_for(self.head, self.backbone, self.cache_dir, **params)

    def fit(self, X, y):
        if X is None or (not isinstance(X, str) and hasattr(X, "__len__") and len(X) == 0):
            raise AnytaskError("no training texts; pass a list of texts and one label per text")
        X = check_input_texts(X, what="training texts")
        head = self._make_head()
        head.fit(self._inputs(head, X), y)
        self.head_ = head
        self.classes_ = head.classes_
        self.backbone_identity_ = self._embedder().backbone.identity
        return self

    def _inputs(self, head, X):
        """What the head reads: embeddings, or the raw texts for heads that run the backbone themselves."""
        from anytask.methods.heads import reads_texts

        X = check_input_texts(X)
        return list(X) if reads_texts(self.head, self.head_params) else self.embed(X)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "head_")
        return self.head_.predict_proba(self._inputs(self.head_, X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "head_")
        return self.head_.predict(self._inputs(self.head_, X))

    # -- persistence (anytask.core.io) ----------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "head_")
        head_extra, head_tensors = self.head_._get_state()
        extra = {"backbone_identity": self.backbone_identity_,
                 "head_class": f"{type(self.head_).__module__}:{type(self.head_).__qualname__}",
                 "head_params": self.head_.get_params(deep=False), "head_extra": head_extra}
        return extra, {f"head.{k}": v for k, v in head_tensors.items()}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "TextClassifier":
        from anytask.core.io import resolve_class

        clf = cls(**{**params, "cache_dir": None})  # a saved folder must not choose where the cache is written
        head_cls = resolve_class(extra["head_class"])
        head_tensors = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
        clf.head_ = head_cls._from_state(extra["head_params"], extra["head_extra"], head_tensors)
        clf.classes_ = clf.head_.classes_
        clf.backbone_identity_ = extra["backbone_identity"]
        return clf
