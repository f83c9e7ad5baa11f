"""scikit-learn composition: Embed in a Pipeline, TextClassifier over any estimator with nested head__
parameters (clone, set_params, GridSearchCV), class_weight on linear_probe, numpy fitted attributes."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from anytask.backbones import get_embedder, state_hash
from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data import make_topic_task


@pytest.fixture(scope="module")
def topics():
    return make_topic_task(12)


def test_the_main_names_import_from_the_package():
    from anytask import Embed, TextClassifier, TextIndex, create_head, resolve_device  # noqa: F401


def test_embed_is_a_transformer_in_a_pipeline(topics, tiny):
    from anytask import Embed

    train, test = topics
    before = state_hash(tiny)
    pipe = make_pipeline(Embed("tiny"), StandardScaler(), LogisticRegression(max_iter=500)).fit(list(train.X), train.y)
    assert state_hash(tiny) == before
    assert np.mean(pipe.predict(list(test.X)) == test.y) > 1 / 6
    embed = pipe[0]
    np.testing.assert_array_equal(embed.transform(list(test.X[:3])), get_embedder("tiny").embed(list(test.X[:3])))
    assert embed.get_feature_names_out().shape == (32,) and embed.get_feature_names_out()[0] == "tiny_0"
    assert clone(embed).get_params() == embed.get_params()
    with pytest.raises(AnytaskError, match="single string"):
        embed.transform("one text")


def test_embed_refuses_a_backbone_whose_weights_changed(topics):
    from anytask import Embed

    embed = Embed("tiny").fit()
    embed.backbone_identity_ = "tiny|w=somethingelse"
    with pytest.raises(AnytaskError, match="fit it again"):
        embed.transform(["x"])


def test_text_classifier_takes_an_estimator_and_exposes_nested_parameters(topics):
    from anytask import TextClassifier, create_head

    train, test = topics
    clf = TextClassifier(backbone="tiny", head=create_head("linear_probe", C=0.5))
    assert clf.get_params()["head__C"] == 0.5
    clf.set_params(head__C=2.0)
    assert clf.head.C == 2.0
    clf.fit(list(train.X), train.y)
    assert clf.head_ is not clf.head and clf.head_.C == 2.0  # cloned on fit, the given estimator stays unfitted
    assert not hasattr(clf.head, "classes_")
    foreign = TextClassifier(backbone="tiny", head=LogisticRegression(max_iter=300)).fit(list(train.X), train.y)
    assert foreign.predict_proba(list(test.X[:4])).shape == (4, len(foreign.classes_))


def test_a_head_given_by_name_takes_head__parameters_too(topics):
    from anytask import TextClassifier

    clf = TextClassifier(backbone="tiny", head="linear_probe")
    assert clf.get_params()["head__C"] == 1.0 and "head__class_weight" in clf.get_params()
    clf.set_params(head__C=0.25, head__class_weight="balanced")
    assert clf.head_params == {"C": 0.25, "class_weight": "balanced"}
    assert clone(clf).get_params()["head__C"] == 0.25
    with pytest.raises(AnytaskError, match="has no parameter"):
        clf.set_params(head__nope=1)
    with pytest.raises(AnytaskError, match="head_params apply to a head given by name"):
        TextClassifier(backbone="tiny", head=LogisticRegression(), head_params={"C": 1}).fit(["a", "b"], ["x", "y"])


@pytest.mark.parametrize("head", ["linear_probe", "estimator"])
def test_grid_search_cv_reaches_the_head(topics, head):
    from anytask import TextClassifier, create_head

    train, _ = topics
    clf = TextClassifier(backbone="tiny", head=head if head == "linear_probe" else create_head("linear_probe"))
    search = GridSearchCV(clf, {"head__C": [0.1, 10.0]}, cv=2).fit(list(train.X), train.y)
    assert search.best_params_["head__C"] in (0.1, 10.0)
    assert search.best_estimator_.head_.C == search.best_params_["head__C"]


def test_saving_a_classifier_with_an_estimator_head(topics, tmp_path):
    from anytask import TextClassifier, create_head

    train, test = topics
    clf = TextClassifier(backbone="tiny", head=create_head("centroid", scale=10.0)).fit(list(train.X), train.y)
    loaded = io.load(io.save(clf, tmp_path / "m"))
    assert loaded.head == "centroid" and loaded.head_params == {"scale": 10.0}
    np.testing.assert_allclose(loaded.predict_proba(list(test.X)), clf.predict_proba(list(test.X)), atol=1e-6)
    foreign = TextClassifier(backbone="tiny", head=LogisticRegression()).fit(list(train.X), train.y)
    with pytest.raises(AnytaskError, match="never a pickle"):
        io.save(foreign, tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_class_weight_balanced_equals_scikit_learn_and_lifts_the_rare_class():
    from anytask import create_head

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (95, 8)), rng.normal(0.6, 1, (5, 8))]).astype(np.float32)
    y = np.array(["ham"] * 95 + ["spam"] * 5)
    plain = create_head("linear_probe", calibration=None).fit(X, y)
    balanced = create_head("linear_probe", calibration=None, class_weight="balanced").fit(X, y)
    ref = LogisticRegression(class_weight="balanced", max_iter=500, tol=1e-6).fit(X.astype(np.float64), y)
    np.testing.assert_allclose(balanced.coef_, ref.coef_, atol=1e-3)
    assert (balanced.predict(X) == "spam").sum() > (plain.predict(X) == "spam").sum()
    by_label = create_head("linear_probe", calibration=None, class_weight={"ham": 1.0, "spam": 19.0}).fit(X, y)
    assert (by_label.predict(X) == "spam").sum() > (plain.predict(X) == "spam").sum()
    with pytest.raises(AnytaskError, match="not in y"):
        create_head("linear_probe", class_weight={"eggs": 2.0}).fit(X, y)
    with pytest.raises(AnytaskError, match="class_weight"):
        create_head("linear_probe", class_weight="most").fit(X, y)


def test_fitted_attributes_are_numpy_arrays(tmp_path):
    from anytask import create_head

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 6)).astype(np.float32), np.repeat(["a", "b", "c"], 10)
    probe = create_head("linear_probe").fit(X, y)
    centroid = create_head("centroid").fit(X, y)
    assert isinstance(probe.coef_, np.ndarray) and probe.coef_.shape == (3, 6)
    assert isinstance(probe.intercept_, np.ndarray) and isinstance(centroid.prototypes_, np.ndarray)
    loaded = io.load(io.save(probe, tmp_path / "p"))
    assert isinstance(loaded.coef_, np.ndarray)
    np.testing.assert_allclose(loaded.predict_proba(X), probe.predict_proba(X), atol=1e-6)
