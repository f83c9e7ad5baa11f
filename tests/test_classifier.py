import numpy as np
import pytest

from anytask.core import io
from anytask.backbones import state_hash
from anytask.apps.classifier import TextClassifier
from anytask.data import make_topic_task
from anytask.core.errors import AnytaskError


@pytest.fixture(scope="module")
def topics():
    return make_topic_task(20)


@pytest.mark.parametrize("head", ["linear_probe", "centroid", "knn", "zero_shot"])
def test_text_classifier_fit_predict_save_load(head, topics, tiny, tmp_path):
    train, test = topics
    before = state_hash(tiny)
    clf = TextClassifier(backbone="tiny", head=head).fit(train.X, train.y)
    assert state_hash(tiny) == before
    pred = clf.predict(test.X)
    assert np.mean(pred == test.y) > 1 / 6  # better than chance even on a random tiny encoder
    loaded = io.load(io.save(clf, tmp_path / "clf"))
    np.testing.assert_array_equal(loaded.predict(test.X), pred)
    np.testing.assert_allclose(loaded.predict_proba(test.X), clf.predict_proba(test.X), atol=1e-6)


def test_loaded_classifier_refuses_a_different_backbone(topics, tmp_path):
    train, _ = topics
    path = io.save(TextClassifier(backbone="tiny").fit(train.X, train.y), tmp_path / "clf")
    import json

    cfg = json.loads((path / "config.json").read_text())
    cfg["params"]["backbone"] = "tiny:seed=3"
    cfg["config_sha256"] = io.config_digest(cfg)  # a deliberate edit, checksum updated: caught by the identity
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AnytaskError, match="refit"):
        io.load(path).predict(["hello a text not in the cache"])


def test_empty_training_set_is_a_clear_error():
    with pytest.raises(AnytaskError, match="no training texts"):
        TextClassifier(backbone="tiny").fit([], [])


@pytest.mark.minilm
def test_minilm_classifier_learns_topics_and_leaves_backbone_untouched(topics, minilm):
    train, test = topics
    before = state_hash(minilm)
    clf = TextClassifier(head="linear_probe").fit(train.X[::5], train.y[::5])
    assert np.mean(clf.predict(test.X) == test.y) > 0.85
    assert state_hash(minilm) == before


def test_cached_texts_predict_without_loading_the_backbone_and_equal_the_embedding_path(tmp_path, monkeypatch):
    import anytask.backbones as backbones
    from anytask.core import io

    texts = ["a goal in the match", "rates rose again", "the striker scored", "shares fell"]
    labels = ["sport", "finance", "sport", "finance"]
    clf = TextClassifier(backbone="tiny").fit(texts, labels)  # the default (per-test) cache folder
    slow = clf.predict_proba(texts)  # embeds through the backbone and fills the cache
    loaded = io.load(io.save(clf, tmp_path / "m"))

    def no_model(*args, **kwargs):
        raise AssertionError("the backbone was loaded for texts that are all in the cache")

    monkeypatch.setattr(backbones, "get_embedder", no_model)
    np.testing.assert_array_equal(loaded.predict_proba(texts), slow)  # the same vectors, bit for bit
    monkeypatch.undo()
    assert loaded.predict(["a text never seen"]).shape == (1,)  # a miss takes the embedding path
