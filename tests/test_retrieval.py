"""Retrieval: ranking metrics against hand-computed toys and scikit-learn's independent implementations,
the exact index, TextIndex (build, add, remove, save, load, identity) and the index/search commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.retrieval import ExactIndex, TextIndex, evaluate
from anytask.methods.retrieval import metrics as M


# -- metrics ------------------------------------------------------------------------------------------

def test_metrics_on_a_hand_computed_toy():
    ranked, relevant = ["a", "b", "c", "d", "e"], {"b", "d", "z"}  # z is never retrieved
    assert M.average_precision(ranked, relevant) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert M.reciprocal_rank(ranked, relevant) == 0.5
    assert M.r_precision(ranked, relevant) == pytest.approx(1 / 3)  # one of the top 3 is relevant
    assert M.rp_at_k(ranked, relevant, k=2) == 0.5 and M.rp_at_k(ranked, relevant, k=10) == pytest.approx(2 / 3)
    assert M.recall_at_k(ranked, relevant, k=4) == pytest.approx(2 / 3)
    assert M.precision_at_k(ranked, relevant, k=4) == 0.5
    dcg, ideal = 1 / np.log2(3) + 1 / np.log2(5), 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert M.ndcg(ranked, relevant, k=5) == pytest.approx(dcg / ideal)
    graded = {"b": 3, "d": 1}
    assert M.ndcg(ranked, graded, k=2) == pytest.approx((3 / np.log2(3)) / (3 + 1 / np.log2(3)))
    assert M.average_precision(ranked, relevant, k=2) == pytest.approx(0.5 / 3)
    out = evaluate({"q1": ranked, "q2": ["x"]}, {"q1": relevant, "q2": {"x"}, "q3": {"y"}}, ["map", "mrr"])
    assert out["map"] == pytest.approx((M.average_precision(ranked, relevant) + 1 + 0) / 3)  # q3: nothing retrieved


def test_metrics_agree_with_scikit_learn_on_full_rankings():
    from sklearn.metrics import average_precision_score, ndcg_score

    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(5, 40))
        scores = rng.normal(size=n)
        gains = np.where(rng.random(n) < 0.3, rng.integers(1, 4, size=n), 0)
        if gains.sum() == 0:
            gains[0] = 2
        ranked = list(np.argsort(-scores, kind="stable"))
        relevant = {i for i in range(n) if gains[i] > 0}
        assert M.average_precision(ranked, relevant) == pytest.approx(average_precision_score(gains > 0, scores))
        graded = {i: float(gains[i]) for i in relevant}
        for k in (3, 10, n):
            assert M.ndcg(ranked, graded, k=k) == pytest.approx(ndcg_score(gains[None], scores[None], k=k))


@pytest.mark.parametrize("call,match", [
    (lambda: M.average_precision(["a"], set()), "no relevant ids"),
    (lambda: M.reciprocal_rank(["a", "a"], {"a"}), "repeats an id"),
    (lambda: M.ndcg(["a"], {"a"}, k=0), "cut-off of at least 1"),
    (lambda: evaluate({"q": ["a"]}, {"q": {"a"}}, ["bleu"]), "unknown metric"),
    (lambda: evaluate({"q": ["a"]}, {"q": {"a"}}, ["ndcg@ten"]), "positive integer"),
    (lambda: evaluate({"q": ["a"], "p": ["b"]}, {"q": {"a"}}), "have no qrels"),
])
def test_metric_misuse_is_a_clear_error(call, match):
    with pytest.raises(AnytaskError, match=match):
        call()


# -- the exact index ------------------------------------------------------------------------------------

def test_exact_index_matches_brute_force_and_edits_in_place():
    rng = np.random.default_rng(1)
    X, Q = rng.normal(size=(300, 16)), rng.normal(size=(7, 16))
    index = ExactIndex().fit(X)
    scores, ids = index.search(Q, k=10)
    Xn, Qn = X / np.linalg.norm(X, axis=1, keepdims=True), Q / np.linalg.norm(Q, axis=1, keepdims=True)
    sims = Qn @ Xn.T
    want = np.argsort(-sims, axis=1)[:, :10]
    assert (ids.astype(int) == want).all()
    np.testing.assert_allclose(scores, np.take_along_axis(sims, want, 1), atol=1e-5)
    index.add(Q, [1000 + i for i in range(7)])
    assert index.search(Q, k=1)[1][:, 0].tolist() == [1000 + i for i in range(7)]
    index.remove([1000, 1001, 0])
    assert len(index) == 304 and {1000, 1001, 0}.isdisjoint(index.search(Q, k=304)[1].ravel().tolist())


@pytest.mark.parametrize("call,match", [
    (lambda ix: ExactIndex().fit(np.zeros((0, 4))), "non-empty 2-D"),
    (lambda ix: ExactIndex().fit(np.ones((2, 4)), ["a", "a"]), "duplicate id 'a'"),
    (lambda ix: ExactIndex().fit(np.ones((2, 4)), ["a"]), "one id per vector"),
    (lambda ix: ExactIndex().fit(np.ones((2, 4)), [1.5, 2.5]), "strings or integers"),
    (lambda ix: ExactIndex().fit(np.array([[1.0, np.nan]])), "NaN or inf"),
    (lambda ix: ExactIndex().fit(np.zeros((2, 3))), "all-zero row"),
    (lambda ix: ix.search(np.ones((1, 5)), k=1), "5 dimensions but the index holds 4"),
    (lambda ix: ix.search(np.ones((1, 4)), k=0), "at least 1 neighbour"),
    (lambda ix: ix.search(np.ones((1, 4)), k=4), "holds 3 documents"),
    (lambda ix: ix.add(np.ones((1, 4)), ["b"]), "already in the index"),
    (lambda ix: ix.remove(["zz"]), "not in the index"),
    (lambda ix: ix.remove(["a", "b", "c"]), "empty index"),
])
def test_index_misuse_is_a_clear_error_and_changes_nothing(call, match):
    ix = ExactIndex().fit(np.eye(4)[:3], ["a", "b", "c"])
    with pytest.raises(AnytaskError, match=match):
        call(ix)
    assert ix.ids_ == ["a", "b", "c"] and ix.vectors_.shape == (3, 4)


# -- the approximate index (usearch) ----------------------------------------------------------------------

def _clustered(n: int, n_queries: int, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Documents and queries drawn around the same 20 centres, as embeddings of one domain are."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, d))
    X = centers[rng.integers(0, 20, n + n_queries)] + 0.5 * rng.normal(size=(n + n_queries, d))
    return X[:n].astype(np.float32), X[n:].astype(np.float32)


def test_hnsw_finds_what_the_exact_index_finds_and_always_answers_k():
    from anytask.methods.retrieval.hnsw import HNSWIndex

    X, Q = _clustered(3000, 50)
    exact, approx = ExactIndex().fit(X), HNSWIndex().fit(X)
    _, want = exact.search(Q, k=10)
    scores, got = approx.search(Q, k=10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), want.tolist())])
    assert recall >= 0.95, recall
    assert (np.diff(scores, axis=1) <= 1e-5).all()
    approx.remove(list(range(0, 3000, 2)))  # half the graph removed in place
    s, ids = approx.search(Q, k=1500)  # k = everything left: the exhaustive fallback fills what the graph misses
    assert ids.shape == (50, 1500) and all(len(set(row)) == 1500 for row in ids.tolist())
    assert all(i % 2 == 1 for i in ids.ravel().tolist())


def test_hnsw_without_usearch_says_how_to_install_it(monkeypatch):
    import importlib.util

    from anytask.methods.retrieval.hnsw import HNSWIndex

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "usearch" else real(name, *a))
    with pytest.raises(AnytaskError, match="anytask\\[retrieval\\]"):
        HNSWIndex().fit(np.eye(3))
    with pytest.raises(AnytaskError, match="positive integer"):
        HNSWIndex(connectivity=0).fit(np.eye(3))


# -- TextIndex and the commands ---------------------------------------------------------------------------

CORPUS = ["the nurse works in a hospital", "the chef cooks in a restaurant", "the pilot flies a plane",
          "a doctor treats patients", "the farmer grows wheat"]


def test_text_index_searches_edits_saves_and_checks_its_backbone(tiny, tmp_path, monkeypatch):
    index = TextIndex(backbone="tiny").fit(CORPUS, ids=[f"d{i}" for i in range(5)])
    hits = index.search(["the nurse works in a hospital", "wheat"], k=2)
    assert hits[0][0] == {"id": "d0", "score": pytest.approx(1.0, abs=1e-5), "text": CORPUS[0]}
    assert len(hits) == 2 and all(len(h) == 2 for h in hits)
    index.add(["a sailor on a ship"], ["d5"]).remove(["d1"])
    assert len(index) == 5 and index.search(["a sailor on a ship"], k=1)[0][0]["id"] == "d5"
    loaded = io.load(io.save(index, tmp_path / "ix"))
    assert loaded.search(["wheat"], k=5) == index.search(["wheat"], k=5)
    with pytest.raises(AnytaskError, match="string ids"):
        loaded.add(["x"])
    numbered = TextIndex(backbone="tiny").fit(CORPUS[:2]).add(["more"])
    assert numbered.index_.ids_ == [0, 1, 2]
    monkeypatch.setattr(type(tiny), "identity", property(lambda self: "tiny@other-weights"))
    with pytest.raises(AnytaskError, match="rebuild the index"):
        loaded.search(["wheat"], k=1)


def test_index_and_search_commands(tiny, tmp_path, capsys):
    from anytask.apps.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(CORPUS)))
    out = tmp_path / "ix"
    assert main(["index", "build", "--backbone", "tiny", "--corpus", str(corpus), "--id-column", "id",
                 "--out", str(out)]) == 0
    assert main(["index", "build", "--backbone", "tiny", "--corpus", str(corpus), "--out", str(out)]) == 2  # exists
    capsys.readouterr()
    assert main(["search", "--index", str(out), "--query", "the pilot flies a plane", "-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["hits"][0]["id"] == "d2" and len(line["hits"]) == 2
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "d9", "text": "a sailor on a ship"}) + "\n")
    assert main(["index", "add", "--index", str(out), "--corpus", str(extra), "--id-column", "id"]) == 0
    assert main(["index", "remove", "--index", str(out), "--id", "d0"]) == 0
    assert main(["index", "remove", "--index", str(out), "--id", "nope"]) == 2
    assert len(io.load(out)) == 5
    assert main(["search", "--index", str(out), "--query", "x", "-k", "9"]) == 2  # more than the index holds
    approx = tmp_path / "ix-hnsw"
    assert main(["index", "build", "--backbone", "tiny", "--index", "hnsw", "--corpus", str(corpus), "--id-column",
                 "id", "--out", str(approx)]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(approx), "--query", "the pilot flies a plane", "-k", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["hits"][0]["id"] == "d2"
