"""Score heads (methods/scores): UniQA's anchored scorer (card 02) and the ridge baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.methods.scores import create_scorer, pearson, spearman

GROUPS = [["awful", "bad", "fine", "good", "great"], ["zero stars", "one star", "three stars", "four stars", "five"]]


@pytest.fixture
def reviews(tiny):
    rng = np.random.default_rng(0)
    words = ["awful", "bad", "fine", "good", "great"]
    level = rng.integers(0, 5, size=60)
    texts = [f"{words[k]} {rng.choice(list('abcd'))} film {i}" for i, k in enumerate(level)]
    return tiny.embed(texts).numpy(), 1.0 + 2.0 * level


def anchored(**kw):
    return create_scorer("anchored", groups=GROUPS, backbone="tiny", **kw)


def test_correlations_match_scipy():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert pearson(a, b) == pytest.approx(pearsonr(a, b).statistic)
    assert spearman(a, np.ones(50)) == 0.0


def test_zero_shot_needs_no_labels_and_stays_in_range(reviews):
    X, _ = reviews
    z = anchored(train="none", target_range=(1, 10)).fit()
    s = z.predict(X)
    lo, hi = 1 + 9 * 0.2, 10.0  # levels 0.2 ... 1.0 mapped to the target range
    assert s.shape == (60,) and (s >= lo - 1e-9).all() and (s <= hi + 1e-9).all()


def test_anchor_weights_sum_to_one_and_score_lies_within_the_levels(reviews):
    X, y = reviews
    m = anchored(epochs=3).fit(X, y)
    p = m.anchor_weights(X)
    assert p.shape == (60, 2, 5) and torch.allclose(p.sum(-1), torch.ones(60, 2), atol=1e-5)
    u = (m.predict(X) - y.min()) / np.ptp(y)
    levels = m.levels_.numpy()
    assert (u >= levels.min() - 1e-6).all() and (u <= levels.max() + 1e-6).all()


def test_a_zeroed_adapter_gives_the_zero_shot_score(reviews):
    X, y = reviews
    zero_shot = anchored(train="none").fit(X, y)
    m = anchored(train="none").fit(X, y)
    torch.nn.init.normal_(m.adapter_.down.weight)
    torch.nn.init.zeros_(m.adapter_.up.weight)
    assert np.allclose(m.predict(X), zero_shot.predict(X), atol=1e-6)


def test_training_the_levels_and_the_adapter_fits_the_targets(reviews):
    X, y = reviews
    none = spearman(y, anchored(train="none").fit(X, y).predict(X))
    scales = anchored(train="scales", epochs=30, lr=1e-2).fit(X, y)
    adapter = anchored(train="adapter", epochs=30, lr=1e-2).fit(X, y)
    assert not torch.equal(scales.levels_, torch.linspace(0.2, 1.0, 5))
    assert spearman(y, adapter.predict(X)) > max(none, 0.5)
    again = anchored(train="adapter", epochs=30, lr=1e-2).fit(X, y)
    assert np.array_equal(again.predict(X), adapter.predict(X))  # seeded


def test_ridge_recovers_a_linear_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = X @ rng.normal(size=8) + 3.0
    r = create_scorer("ridge").fit(X, y)
    assert pearson(y, r.predict(X)) > 0.99 and r.score(X, y) > 0.98


@pytest.mark.parametrize("y,match", [(np.array([1.0, np.nan, 2.0, 3.0]), "NaN"),
                                     (np.array([2.0, 2.0, 2.0, 2.0]), "two different values"),
                                     (np.array(["a", "b", "a", "b"]), "numeric targets"),
                                     (np.array([1.0, 2.0]), "must match")])
def test_bad_targets_are_clear_errors(y, match):
    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    with pytest.raises(AnytaskError, match=match):
        create_scorer("ridge").fit(X, y)


def test_order_reads_ordered_labels_and_refuses_unknown_ones():
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    y = np.array(["neg", "neu", "pos", "pos", "neg", "neu"])
    r = create_scorer("ridge", order=["neg", "neu", "pos"]).fit(X, y)
    assert r.target_range_ == (0.0, 2.0)
    with pytest.raises(AnytaskError, match="not in order"):
        create_scorer("ridge", order=["neg", "pos"]).fit(X, y)


def test_bad_groups_and_wrong_width_are_clear_errors(reviews):
    X, y = reviews
    with pytest.raises(AnytaskError, match="same number"):
        create_scorer("anchored", groups=[["a", "b"], ["c", "d", "e"]], backbone="tiny").fit(X, y)
    with pytest.raises(AnytaskError, match="anchor ladders"):
        create_scorer("anchored", groups=["bad", "good"], backbone="tiny").fit(X, y)
    with pytest.raises(AnytaskError, match="train="):
        anchored(train="all").fit(X, y)
    m = anchored(train="none").fit(X, y)
    with pytest.raises(AnytaskError, match="features"):
        m.predict(X[:, :5])
    with pytest.raises(AnytaskError, match="features"):
        anchored().fit(X[:, :5], y)


def test_fit_without_data_is_the_anchors_alone_whatever_train_says(reviews):
    X, y = reviews
    a = anchored().fit()  # train="adapter" by default, but nothing to train on
    b = anchored(train="none").fit(X, y)
    assert np.allclose((a.predict(X) - 0) / 1, (b.predict(X) - y.min()) / np.ptp(y), atol=1e-6)


def test_text_scorer_and_the_cli_fit_numeric_targets(tmp_path, capsys):
    import json

    from anytask.apps.cli import main
    from anytask.apps.scorer import TextScorer
    from anytask.core import io

    texts = [f"{w} film number {i}" for i in range(10) for w in ("awful", "fine", "great")]
    y = np.tile([1, 5, 10], 10)
    scorer = TextScorer(backbone="tiny").fit(texts, y)
    assert scorer.predict(texts[:3]).shape == (3,) and scorer.score(texts, y) > 0.5
    assert io.load(io.save(scorer, tmp_path / "s")).predict(texts[:3]).tolist() == scorer.predict(texts[:3]).tolist()
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "\n".join(f"{t},{v}" for t, v in zip(texts, y)) + "\n")  # numbers as text
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--head", "anchored", "--param", "epochs=2",
                 "--param", 'groups=[["awful", "fine", "great"]]', "--out", str(tmp_path / "m")]) == 0
    assert main(["predict", "--model", str(tmp_path / "m"), "--text", "a great film"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"text", "score"} and 1 <= out["score"] <= 10
    levels = tmp_path / "levels.jsonl"
    levels.write_text("\n".join(json.dumps({"text": t, "label": ["low", "mid", "high"][i % 3]})
                                for i, t in enumerate(texts)) + "\n")
    assert main(["fit", "--backbone", "tiny", "--data", str(levels), "--head", "ridge",
                 "--out", str(tmp_path / "x")]) == 2
    assert "numeric targets" in capsys.readouterr().err
    assert main(["fit", "--backbone", "tiny", "--data", str(levels), "--head", "ridge", "--param",
                 'order=["low", "mid", "high"]', "--out", str(tmp_path / "x")]) == 0


def test_a_classification_head_given_scores_points_to_the_score_heads():
    from anytask.methods.heads import create_head

    X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    with pytest.raises(AnytaskError, match="Unknown label type: continuous.*score head"):
        create_head("linear_probe").fit(X, np.array([1.5, 2.2, 3.1, 4.7, 5.2, 6.9]))
