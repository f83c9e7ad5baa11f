"""``bm25``: the lexical baseline every learned ranker here is measured against.

Robertson & Zaragoza 2009, The Probabilistic Relevance Framework: BM25 and Beyond,
https://doi.org/10.1561/1500000019; the index and scoring are bm25s's (https://github.com/xhluca/bm25s,
Lucene's variant by default), with English stop words removed and Snowball stemming when PyStemmer is
installed. Optional: ``pip install 'anytask[retrieval]'``. It learns nothing: ``fit`` only checks its
pairs, so it stands beside a tuned ranker in the same benchmark loop.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.methods.retrieval.base import RANKERS, BaseRanker, check_pairs

INSTALL = "pip install 'anytask[retrieval]' (or pip install bm25s PyStemmer)"


@RANKERS.register("bm25", reference="Robertson & Zaragoza 2009, https://doi.org/10.1561/1500000019 (bm25s)",
                  summary="lexical BM25 (Lucene variant) with stop words and Snowball stemming; learns nothing",
                  input="texts", output="scores", saveable=False)
class BM25Ranker(BaseRanker):
    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stem: bool = True) -> None:
        self.k1 = k1
        self.b = b
        self.method = method
        self.stem = stem

    def fit(self, queries=None, targets=None, sets=None) -> "BM25Ranker":
        if queries is not None or targets is not None:
            check_pairs(queries, targets)
        return self

    def _stemmer(self):
        if not self.stem or importlib.util.find_spec("Stemmer") is None:
            return None
        import Stemmer

        return Stemmer.Stemmer("english")

    def _tokenize(self, texts: list[str]):
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer(), show_progress=False)

    def _cache_targets(self, texts: list[str]) -> None:
        if importlib.util.find_spec("bm25s") is None:
            raise AnytaskError(f"the bm25 ranker needs the package bm25s: {INSTALL}")
        import bm25s

        self.index_ = bm25s.BM25(k1=float(self.k1), b=float(self.b), method=self.method)
        self.index_.index(self._tokenize(texts), show_progress=False)

    def _score(self, queries: list[str]) -> np.ndarray:
        tokens = self._tokenize(queries)
        vocab = {i: w for w, i in tokens.vocab.items()}
        out = np.zeros((len(queries), len(self.targets_)), dtype=np.float32)
        for row, ids in enumerate(tokens.ids):
            words = [vocab[i] for i in ids]
            if words:  # a query of stop words only scores 0 everywhere
                out[row] = self.index_.get_scores(words)
        return out
