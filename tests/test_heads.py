"""Contract checks run over every registered head (sklearn's test_common.py style)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import HEADS, create_head

ARRAY_HEADS = ["linear_probe", "centroid", "knn", "icl"]
# heads over embeddings; heads that take raw texts (prompt_tuning) have their own test file
FEATURE_HEADS = [n for n in HEADS.names() if HEADS.caps(n).input == "features"]


@pytest.fixture
def make(tiny_concepts):
    def build(name):
        # heads that embed label names or use a concept model get ones that match the tiny backbone
        if name in ("zero_shot", "auto", "icl"):
            return create_head(name, backbone="tiny")
        if name == "concept_bottleneck":
            return create_head(name, concepts=str(tiny_concepts), l1=1e-4)
        return create_head(name)

    return build


@pytest.fixture
def tiny_blobs(tiny):
    """Embeddings from the tiny backbone (32-d) with string labels."""
    rng = np.random.default_rng(0)
    words = {"apple": "fruit apple banana", "zebra": "animal zebra lion", "mango": "mango tropical fruit"}
    texts, y = [], []
    for label, base in words.items():
        for i in range(12):
            texts.append(f"{base} {' '.join(rng.choice(['x', 'y', 'z', 'w'], size=3))} {i}")
            y.append(label)
    return tiny.embed(texts).numpy(), np.array(y, dtype=object)


@pytest.mark.parametrize("name", FEATURE_HEADS)
def test_head_contract(name, tiny, tiny_blobs, tmp_path, make):
    X, y = tiny_blobs
    from anytask.backbones import state_hash

    before = state_hash(tiny)
    head = make(name)
    params = head.get_params()
    assert head.fit(X, y) is head
    assert head.get_params() == params  # fit never rewrites a parameter
    assert state_hash(tiny) == before  # the backbone is untouched
    proba = head.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert list(head.classes_) == ["apple", "mango", "zebra"]
    pred = head.predict(X)
    assert set(pred) <= set(y) and np.mean(pred == y) > 0.6
    np.testing.assert_array_equal(pred, head.classes_[proba.argmax(1)])
    # idempotent and deterministic
    np.testing.assert_allclose(clone(head).fit(X, y).predict_proba(X), proba, atol=1e-5)
    # save / load round trip
    io.save(head, tmp_path / name)
    loaded = io.load(tmp_path / name)
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6)
    assert list(loaded.classes_) == list(head.classes_)


@pytest.mark.parametrize("name", FEATURE_HEADS)
def test_head_bad_input_errors(name, tiny_blobs, make):
    X, y = tiny_blobs
    head = make(name)
    with pytest.raises(AnytaskError, match="only one class"):
        make(name).fit(X, np.array(["a"] * len(X)))
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(AnytaskError, match=r"NaN or inf \(first at row 3, column 2\)"):
        make(name).fit(bad, y)
    with pytest.raises(AnytaskError, match="empty"):
        make(name).fit(X[:0], y[:0])
    with pytest.raises(AnytaskError, match="labels"):
        make(name).fit(X, y[:-1])
    with pytest.raises(AnytaskError, match="holds strings"):
        make(name).fit(np.array([["a"]] * 4), np.array([0, 1, 0, 1]))
    head.fit(X, y)
    with pytest.raises(AnytaskError, match="has 31 features, but .* is expecting 32 features"):
        head.predict(X[:, :31])
    inf = X[:2].copy()
    inf[0, 0] = np.inf
    with pytest.raises(AnytaskError, match="NaN or inf"):
        head.predict_proba(inf)


def test_integer_labels_round_trip(tmp_path, blobs):
    X, _ = blobs
    y = np.repeat([3, 1, 2], 20)
    head = create_head("linear_probe").fit(X, y)
    loaded = io.load(io.save(head, tmp_path / "m"))
    assert loaded.predict(X).dtype.kind == "i"
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))


@pytest.mark.parametrize("n_classes", [2, 5])
def test_linear_probe_agrees_with_scikit_learn(n_classes):
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(150, 20)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = (X @ rng.normal(size=(20, n_classes))).argmax(1)
    ours = create_head("linear_probe", C=2.0, calibration=None).fit(X, y)
    # the reference in float64: on float32 input scikit-learn's L-BFGS stops ~4e-4 short on some BLAS builds
    ref = LogisticRegression(C=2.0, tol=1e-10, max_iter=10_000).fit(X.astype(np.float64), y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=2e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_centroid_is_nearest_class_mean(blobs):
    X, y = blobs
    head = create_head("centroid").fit(X, y)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    means = np.stack([Xn[y == c].mean(0) for c in head.classes_])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_array_equal(head.predict(X), head.classes_[(Xn @ means.T).argmax(1)])


def test_knn_one_shot_is_nearest_neighbour(blobs):
    X, y = blobs
    one = [np.flatnonzero(y == c)[0] for c in ["apple", "mango", "zebra"]]
    head = create_head("knn", n_neighbors=5).fit(X[one], y[one])
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    nearest = (Xn @ Xn[one].T).argmax(1)
    np.testing.assert_array_equal(head.predict(X), y[one][nearest])


def test_zero_shot_without_examples_uses_label_names(tiny):
    labels = ["sports", "cooking"]
    head = create_head("zero_shot", labels=labels, backbone="tiny").fit()
    X = tiny.embed(["sports", "cooking", "sports news"]).numpy()
    assert head.predict(X)[:2].tolist() == ["sports", "cooking"]
    with pytest.raises(AnytaskError, match="labels="):
        create_head("zero_shot", backbone="tiny").fit()


def test_zero_shot_blends_examples_into_label_prototypes(tiny, tiny_blobs):
    X, y = tiny_blobs
    pure = create_head("zero_shot", backbone="tiny", label_weight=1e6).fit(X, y)
    data = create_head("zero_shot", backbone="tiny", label_weight=0.0).fit(X, y)
    centroid = create_head("centroid").fit(X, y)
    np.testing.assert_allclose(data.prototypes_, centroid.prototypes_, atol=1e-6)
    np.testing.assert_allclose(pure.prototypes_, pure.label_prototypes_, atol=1e-5)


def test_zero_shot_dimension_mismatch_is_clear(tiny_blobs):
    X, y = tiny_blobs
    with pytest.raises(AnytaskError, match="same backbone"):
        create_head("zero_shot", backbone="tiny").fit(np.hstack([X, X]), y)


def test_unknown_head_parameter_lists_valid_ones():
    with pytest.raises(AnytaskError, match="Valid parameters: C, backbone, cache_dir, calibration, class_weight, descriptions, label_prior, max_iter, tol"):
        create_head("linear_probe", c=1.0)


@pytest.mark.parametrize("name", ARRAY_HEADS)
def test_sklearn_estimator_checks(name):
    from sklearn.utils.estimator_checks import check_estimator

    failures = check_estimator(create_head(name), on_fail=None)
    failed = [f"{f['check_name']}: {f['exception']}" for f in failures if f["status"] == "failed"]
    assert not failed, "\n".join(failed)


def test_default_linear_probe_probabilities_are_calibrated_without_changing_predictions(blobs):
    X, y = blobs
    X = X / np.linalg.norm(X, axis=1, keepdims=True)  # unit-norm like a sentence encoder's: tiny raw logits
    raw = create_head("linear_probe", calibration=None).fit(X, y)
    cal = create_head("linear_probe").fit(X, y)
    np.testing.assert_array_equal(cal.predict(X), raw.predict(X))
    assert cal.temperature_ < 1.0  # sharpened: C = 1 on unit-norm features is underconfident
    assert cal.predict_proba(X).max(1).mean() > raw.predict_proba(X).max(1).mean()
    one_each = create_head("linear_probe").fit(X[[0, 20, 40]], y[[0, 20, 40]])  # nothing to hold out
    assert one_each.temperature_ == 1.0
