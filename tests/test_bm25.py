"""The BM25 ranker (methods/retrieval/bm25.py): the lexical baseline, checked against rank-bm25 where installed."""

import numpy as np
import pytest

pytest.importorskip("bm25s")
from anytask.core.errors import AnytaskError  # noqa: E402
from anytask.methods.retrieval import RANKERS  # noqa: E402

DOCS = ["the nurse works in a hospital ward", "a chef cooks food in a restaurant kitchen",
        "the developer writes software for the web", "a driver delivers goods by truck", "the teacher marks homework"]


def test_registered_and_ranks_by_shared_words():
    entry = RANKERS.entry("bm25")
    assert entry.caps.input == "texts" and "Robertson" in entry.reference
    ranker = entry.obj().fit().set_targets(DOCS)
    scores, top = ranker.search(["hospital nurse", "cooking in a kitchen", "trucks and drivers"], k=2)
    assert top[:, 0].tolist() == [0, 1, 3]  # stemming: cooking ~ cooks, trucks ~ truck, drivers ~ driver
    assert (scores[:, 0] > scores[:, 1]).all()
    S = ranker.score(["the a of"])  # stop words only: no evidence anywhere, not an error
    assert S.shape == (1, 5) and (S == 0).all()


def test_agrees_with_rank_bm25_on_unstemmed_text():
    rank_bm25 = pytest.importorskip("rank_bm25")
    import bm25s

    ranker = RANKERS.get("bm25")(stem=False, method="robertson").set_targets(DOCS)  # BM25Okapi's idf
    queries = ["nurse hospital", "software web developer", "goods delivered"]
    tokens = bm25s.tokenize(DOCS, stopwords="en", show_progress=False)
    vocab = {i: w for w, i in tokens.vocab.items()}
    reference = rank_bm25.BM25Okapi([[vocab[i] for i in doc] for doc in tokens.ids], k1=1.5, b=0.75)
    ours = ranker.score(queries)
    for row, q in enumerate(queries):
        qt = bm25s.tokenize([q], stopwords="en", show_progress=False)  # ids in the query's own vocabulary
        words = [w for i in qt.ids[0] for w, j in qt.vocab.items() if j == i]
        theirs = reference.get_scores(words)
        assert np.argmax(ours[row]) == np.argmax(theirs)
        # bm25s leaves out the constant (k1 + 1) factor of the term weight: the same ranking, scaled
        np.testing.assert_allclose(ours[row] * (1.5 + 1), theirs, rtol=1e-4, atol=1e-4)


def test_bad_inputs():
    ranker = RANKERS.get("bm25")()
    with pytest.raises(AnytaskError, match="one target per query"):
        ranker.fit(["a", "b"], ["c"])
    with pytest.raises(AnytaskError, match="empty"):
        ranker.set_targets([])
    ranker.set_targets(DOCS)
    with pytest.raises(AnytaskError, match="1 to 5"):
        ranker.search(["nurse"], k=0)
