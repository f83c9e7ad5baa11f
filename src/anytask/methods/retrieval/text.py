"""``TextIndex``: search texts with a frozen backbone — embeddings (through the cache) in a vector index.

    index = TextIndex(backbone="minilm").fit(corpus, ids)        # embeds the corpus once
    index.search(["nurse in a hospital"], k=5)                   # [[{"id", "score", "text"}, ...]]
    index.add(more_texts, more_ids); index.remove(["doc-3"])      # no rebuild
    anytask.core.io.save(index, "my-index")                      # atomic, checksummed folder

The folder keeps the vectors, ids, texts and the backbone's identity (name + weights hash); a loaded
index embeds queries with the same backbone and refuses one whose weights differ.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.validation import check_input_texts
from anytask.methods.retrieval.base import INDEXES


class TextIndex(Pretrained, BaseEstimator):
    def __init__(self, *, backbone: str = "minilm", index: str = "exact", index_params: dict | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, device: str = "auto") -> None:
        self.backbone = backbone
        self.index = index
        self.index_params = index_params
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.device = device

    def _embed(self, texts: list[str]) -> np.ndarray:
        from anytask.backbones import get_embedder

        embedder = get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache, device=self.device)
        expected = getattr(self, "backbone_identity_", None)
        if expected is not None and embedder.backbone.identity != expected:
            raise AnytaskError(f"this index holds embeddings of {expected}, but {self.backbone!r} now resolves to "
                               f"{embedder.backbone.identity}; rebuild the index")
        if expected is None:  # fit: the identity the index is built with
            self.backbone_identity_ = embedder.backbone.identity
        return embedder.embed(texts)

    def fit(self, texts, ids=None) -> "TextIndex":
        texts = check_input_texts(texts, what="the corpus")
        self.backbone_identity_ = None
        vectors = self._embed(texts)
        self.index_ = INDEXES.get(self.index)(**(self.index_params or {})).fit(vectors, ids)
        self.texts_ = dict(zip(self.index_.ids_, texts))
        return self

    def add(self, texts, ids=None) -> "TextIndex":
        check_is_fitted(self, "index_")
        texts = check_input_texts(texts, what="the new documents")
        if ids is None:
            if not all(isinstance(i, int) for i in self.index_.ids_):
                raise AnytaskError("this index has string ids: give the new documents' ids")
            start = max(self.index_.ids_) + 1
            ids = list(range(start, start + len(texts)))
        self.index_.add(self._embed(texts), ids)
        self.texts_.update(zip(ids, texts))
        return self

    def remove(self, ids) -> "TextIndex":
        check_is_fitted(self, "index_")
        ids = list(ids)
        self.index_.remove(ids)
        for i in ids:
            del self.texts_[i]
        return self

    def search(self, queries, k: int = 10) -> list[list[dict]]:
        """Each query's ``k`` nearest documents, best first: ``{"id", "score", "text"}``."""
        check_is_fitted(self, "index_")
        queries = check_input_texts(queries, what="the queries")
        scores, ids = self.index_.search(self._embed(queries), k)
        return [[{"id": d, "score": float(s), "text": self.texts_[d]} for s, d in zip(srow, drow)]
                for srow, drow in zip(scores, ids)]

    def __len__(self) -> int:
        return len(getattr(self, "texts_", ()))

    # -- persistence (anytask.core.io) -----------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        check_is_fitted(self, "index_")
        extra, tensors = self.index_._get_state()
        return ({"backbone_identity": self.backbone_identity_,
                 "index_class": f"{type(self.index_).__module__}:{type(self.index_).__qualname__}",
                 "index_params": self.index_.get_params(deep=False), "index_extra": extra,
                 "texts": [self.texts_[i] for i in self.index_.ids_]},
                {f"index.{k}": v for k, v in tensors.items()})

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "TextIndex":
        from anytask.core.io import resolve_class

        # a saved folder must not choose where the cache is written, nor this machine's device
        obj = cls(**{**params, "cache_dir": None, "device": "auto"})
        index_cls = resolve_class(extra["index_class"])
        obj.index_ = index_cls._from_state(extra["index_params"], extra["index_extra"],
                                           {k[6:]: v for k, v in tensors.items() if k.startswith("index.")})
        texts = list(extra["texts"])
        if len(texts) != len(obj.index_.ids_):
            raise AnytaskError(f"corrupted saved index: {len(texts)} texts for {len(obj.index_.ids_)} ids; build it again")
        obj.texts_ = dict(zip(obj.index_.ids_, texts))
        obj.backbone_identity_ = extra["backbone_identity"]
        return obj
