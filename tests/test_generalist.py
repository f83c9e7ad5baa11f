"""Uni-Perceiver v2 on text (methods/retrieval/generalist.py): sampling, task-balanced gradients, one head."""

import numpy as np
import pytest

from anytask.backbones import get_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.methods.retrieval import RANKERS
from anytask.methods.retrieval.generalist import GeneralistRanker, balanced_scale, draw_task

SPORT = ["the striker scored a late goal", "the team won the cup final", "a great tennis match", "the runner won gold"]
FOOD = ["bake the bread for an hour", "the soup needs more salt", "fresh basil in the sauce", "a cake with cream"]
TOPICS = {"texts": SPORT + FOOD, "labels": ["sport"] * 4 + ["food"] * 4}
PAIRS = {"queries": ["goal scored late", "bread baking", "salty soup", "tennis final"],
         "targets": [SPORT[0], FOOD[0], FOOD[1], SPORT[2]]}


def test_registered_with_its_paper():
    entry = RANKERS.entry("uni_perceiver_v2")
    assert entry.caps.input == "texts" and "2211.09808" in entry.reference


def test_unmixed_sampling_draws_one_task_per_step_in_proportion_to_the_weights():
    rng = np.random.default_rng(0)
    draws = [draw_task(["pairs", "topics"], np.array([0.25, 0.75]), rng) for _ in range(4000)]
    assert abs(draws.count("topics") / 4000 - 0.75) < 0.03  # binomial sd 0.007
    model = GeneralistRanker(backbone="tiny", steps=12, batch_size=4, task_weights={"topics": 3.0, "pairs": 1.0},
                             balance=False).fit_tasks({"topics": TOPICS, "pairs": PAIRS})
    assert len(model.task_curve_) == len(model.loss_curve_) == 12 and set(model.task_curve_) <= {"topics", "pairs"}


def test_balanced_scale_equalises_the_tasks_gradient_norms():
    norms = {}
    for _ in range(100):  # task a's gradients are ten times task b's
        scaled_a = 10.0 * balanced_scale(norms, "a", 10.0)
        scaled_b = 1.0 * balanced_scale(norms, "b", 1.0)
    assert scaled_a == pytest.approx(scaled_b, rel=1e-6) and scaled_a == pytest.approx(5.5, rel=1e-6)
    assert balanced_scale({}, "a", 3.0) == 1.0  # the first step changes nothing


def test_the_similarity_head_is_a_linear_classifier_over_the_candidates():
    model = GeneralistRanker(backbone="tiny", steps=0).fit_tasks({"topics": TOPICS})
    labels = ["sport", "food", "weather"]
    logits = model.embed(SPORT + FOOD) @ model.embed(labels).T  # a linear map with the candidates as weights
    assert (model.predict(None, SPORT + FOOD, labels=labels) == np.array(labels, dtype=object)[logits.argmax(1)]).all()
    assert set(model.predict("topics", SPORT)) <= {"sport", "food"}


def test_training_fits_both_kinds_of_task_and_leaves_the_backbone_alone():
    before = state_hash(get_backbone("tiny"))
    model = GeneralistRanker(backbone="tiny", steps=60, batch_size=8, lr=3e-3, seed=0)
    model.fit_tasks({"topics": TOPICS, "pairs": PAIRS})
    curve = model.loss_curve_
    assert np.mean(curve[-10:]) < np.mean(curve[:10])
    assert (model.predict("topics", TOPICS["texts"]) == np.array(TOPICS["labels"], dtype=object)).mean() >= 0.9
    model.set_targets(PAIRS["targets"])
    assert model.score(PAIRS["queries"]).shape == (4, 4)
    assert set(model.grad_norms_) == {"topics", "pairs"}
    assert state_hash(get_backbone("tiny")) == before


def test_specialist_mixed_and_unmixed_runs_are_reproducible():
    for sampling, balance in (("mixed", False), ("unmixed", False), ("unmixed", True)):
        a = GeneralistRanker(backbone="tiny", steps=5, batch_size=4, sampling=sampling, balance=balance, seed=3)
        b = GeneralistRanker(backbone="tiny", steps=5, batch_size=4, sampling=sampling, balance=balance, seed=3)
        assert a.fit_tasks({"topics": TOPICS, "pairs": PAIRS}).loss_curve_ == b.fit_tasks(
            {"topics": TOPICS, "pairs": PAIRS}).loss_curve_


@pytest.mark.parametrize("params, tasks, words", [
    ({"sampling": "mixed"}, {"topics": TOPICS}, "needs one task per step"),
    ({"sampling": "sometimes"}, {"topics": TOPICS}, "unmixed"),
    ({"task_weights": {"nope": 1.0}}, {"topics": TOPICS}, "unknown task"),
    ({}, {"topics": {"texts": SPORT, "labels": ["sport"] * 4}}, "at least 2"),
    ({}, {"topics": {"texts": SPORT, "labels": ["sport"] * 3}}, "4 texts but 3 labels"),
    ({}, {"odd": {"images": []}}, r"texts \+ labels"),
    ({}, {}, "tasks is empty"),
])
def test_bad_inputs_are_clear_errors(params, tasks, words):
    with pytest.raises(AnytaskError, match=words):
        GeneralistRanker(backbone="tiny", steps=1, **params).fit_tasks(tasks)
    if tasks:
        with pytest.raises(AnytaskError, match="no classification task 'nope'"):
            GeneralistRanker(backbone="tiny", steps=0).fit_tasks({"topics": TOPICS}).predict("nope", SPORT)
