"""Uni-Perceiver v1 on text (methods/retrieval/uni_perceiver.py): one encoder for inputs and targets, a capped
temperature per task, zero-shot label spaces, export to a backbone folder that the prompt machinery reuses."""

import numpy as np
import pytest
import torch

from anytask.backbones import get_backbone, state_hash
from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head
from anytask.methods.retrieval import RANKERS
from anytask.methods.retrieval.uni_perceiver import MIN_TAU, UniPerceiver

SPORT = ["the striker scored a late goal", "the team won the cup final", "a great tennis match", "the runner won gold"]
FOOD = ["bake the bread for an hour", "the soup needs more salt", "fresh basil in the sauce", "a cake with cream"]
TOPICS = {"texts": SPORT + FOOD, "labels": ["sport"] * 4 + ["food"] * 4}
PAIRS = {"queries": ["goal scored late", "bread baking", "salty soup", "tennis final"],
         "targets": [SPORT[0], FOOD[0], FOOD[1], SPORT[2]]}


@pytest.fixture(scope="module")
def tiny_bert(bert_folders):
    return f"hf:{bert_folders[0]}"


@pytest.fixture(scope="module")
def trained(tiny_bert):
    before = state_hash(get_backbone(tiny_bert))
    model = UniPerceiver(backbone=tiny_bert, steps=60, batch_size=8, lr=3e-3, seed=0).fit_tasks(
        {"topics": TOPICS, "pairs": PAIRS})
    return model, before


def test_registered_with_its_paper():
    entry = RANKERS.entry("uni_perceiver")
    assert entry.caps.input == "texts" and "2112.01522" in entry.reference and entry.caps.saveable


def test_steps_0_is_the_frozen_backbone_scoring_label_names(tiny_bert):
    backbone = get_backbone(tiny_bert)
    model = UniPerceiver(backbone=tiny_bert, steps=0).fit_tasks({"topics": TOPICS})
    np.testing.assert_allclose(model.embed(SPORT), backbone.embed(SPORT).numpy(), atol=1e-5)
    vectors = backbone.embed(SPORT + ["sport", "food"]).numpy()
    expected = np.array(["sport", "food"], dtype=object)[(vectors[:4] @ vectors[4:].T).argmax(1)]
    assert model.predict("topics", SPORT).tolist() == expected.tolist()


def test_training_learns_both_tasks_keeps_the_temperature_capped_and_leaves_the_backbone(tiny_bert, trained):
    model, before = trained
    assert state_hash(get_backbone(tiny_bert)) == before
    assert len(model.loss_curve_) == 60 and set(model.task_curve_) == {"topics", "pairs"}
    first = np.mean(model.loss_curve_[:10])
    assert np.mean(model.loss_curve_[-10:]) < first
    assert (model.predict("topics", TOPICS["texts"]) == np.array(TOPICS["labels"], dtype=object)).mean() >= 0.75
    assert all(float(model._tau(n)) >= MIN_TAU for n in model.tasks_)
    zero_shot = model.predict(None, SPORT, labels=["sport", "cooking", "finance"])  # any label names
    assert set(zero_shot) <= {"sport", "cooking", "finance"}
    S = model.set_targets(PAIRS["targets"]).score(PAIRS["queries"])
    assert S.shape == (4, 4)


def test_save_load_and_export_give_the_same_encoder(tiny_bert, trained, tmp_path):
    trained, _ = trained
    loaded = io.load(io.save(trained, tmp_path / "up"))
    np.testing.assert_allclose(loaded.embed(SPORT), trained.embed(SPORT), atol=1e-5)
    assert loaded.predict("topics", FOOD).tolist() == trained.predict("topics", FOOD).tolist()
    folder = trained.export(tmp_path / "encoder")
    exported = get_backbone(f"hf:{folder}")
    np.testing.assert_allclose(exported.embed(SPORT).numpy(), trained.embed(SPORT), atol=1e-4)
    # the project's prompt machinery runs on it unchanged: deep key/value prompts on the exported encoder
    with torch.random.fork_rng():
        head = create_head("prompt_tuning", backbone=f"hf:{folder}", prompt_mode="kv", length=2, depth=2,
                           epochs=2, batch_size=4).fit(TOPICS["texts"], TOPICS["labels"])
    assert head.predict(SPORT).shape == (4,)


@pytest.mark.parametrize("params,tasks,words", [
    ({"n_top": 0}, {"topics": TOPICS}, "n_top"),
    ({"tau_init": 0.001}, {"topics": TOPICS}, "tau_init"),
    ({"task_weights": {"nope": 1.0}}, {"topics": TOPICS}, "unknown task"),
    ({}, {"a.b": TOPICS}, "without '.'"),
    ({}, {}, "empty"),
    ({}, {"t": {"texts": SPORT, "labels": ["sport"] * 4}}, "at least 2"),
])
def test_bad_inputs_are_clear_errors(tiny_bert, params, tasks, words):
    with pytest.raises(AnytaskError, match=words):
        UniPerceiver(backbone=tiny_bert, steps=1, **params).fit_tasks(tasks)


def test_predicting_an_unknown_task_names_the_trained_ones(tiny_bert):
    model = UniPerceiver(backbone=tiny_bert, steps=0).fit_tasks({"topics": TOPICS})
    with pytest.raises(AnytaskError, match="topics"):
        model.predict("nope", SPORT)
