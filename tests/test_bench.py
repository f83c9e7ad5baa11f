import json

import numpy as np
import pytest

from anytask.backbones import Embedder, get_backbone
from anytask.experiments import prepare_tasks, run_bench
from anytask.experiments.report import markdown, plot, task_average
from anytask.data import eval_indices

ROW_KEYS = {"task", "head", "shots_per_class", "seed", "accuracy", "macro_f1", "ece", "fit_seconds",
            "predict_seconds"}


@pytest.fixture(scope="module")
def prepared(tiny):
    return prepare_tasks(["synthetic:topics", "sklearn:wine"], shots=[2, 4], seeds=[0, 1], max_test=50,
                         embedder=Embedder(tiny, use_cache=False), progress=False)


def test_bench_rows_always_include_the_baseline(prepared):
    tasks, stats = prepared
    res = run_bench(tasks, ["centroid", "zero_shot"], [2, 4], [0, 1], backbone="tiny", progress=False)
    assert res["heads"][0] == "linear_probe"
    assert all(ROW_KEYS <= set(r) for r in res["results"])
    # zero_shot needs label text: run on the text task, skipped (and recorded) on numeric features
    assert {r["task"] for r in res["results"] if r["head"] == "zero_shot"} == {"synthetic:topics"}
    assert {s["task"] for s in res["skipped"]} == {"sklearn:wine"}
    assert len(res["results"]) == 2 * 2 * 2 * 3 - 4
    assert all(r["n_test"] == 50 for r in res["results"] if r["task"] == "synthetic:topics")
    json.dumps(res)
    assert stats["texts_embedded"] > 0
    assert all(0.0 <= r["ece"] <= 1.0 for r in res["results"])


def test_expected_calibration_error():
    from anytask.experiments.runner import expected_calibration_error

    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    assert expected_calibration_error(proba, np.array([True, True, True, True])) == pytest.approx(0.2875)
    # 0.9 and 0.8 fall in different bins of 15; each bin's gap is |accuracy - confidence|
    assert expected_calibration_error(proba, np.array([True, False, True, False])) == pytest.approx(
        (0.1 + 0.8 + 0.4 + 0.55) / 4)


def test_test_subset_and_shots_depend_only_on_task_shots_seed(prepared):
    tasks, _ = prepared
    np.testing.assert_array_equal(eval_indices("x", 500, 100), eval_indices("x", 500, 100))
    assert not np.array_equal(eval_indices("x", 500, 100), eval_indices("y", 500, 100))
    topics = tasks[0]
    np.testing.assert_array_equal(topics.shot_indices(4, 0), topics.shot_indices(4, 0))
    again, _ = prepare_tasks(["synthetic:topics"], shots=[4], seeds=[0], max_test=50,
                             embedder=Embedder(get_backbone("tiny"), use_cache=False), progress=False)
    np.testing.assert_array_equal(again[0].shot_indices(4, 0), topics.shot_indices(4, 0))
    # the same rows embedded in other batches: equal up to float rounding of the batched matmuls
    # (about 1e-7 on unit-norm rows); a wrong row or test subset differs by more than 1e-2
    np.testing.assert_allclose(again[0].X_test, topics.X_test, rtol=0, atol=1e-5)
    idx = topics.shot_indices(4, 0)
    np.testing.assert_allclose(again[0].X_train[idx], topics.X_train[idx], rtol=0, atol=1e-5)


def test_report_table_average_and_plot(prepared, tmp_path):
    tasks, _ = prepared
    res = run_bench(tasks, ["centroid"], [2, 4], [0, 1], progress=False)
    table = markdown(res)
    assert "| **average** | centroid |" in table and "k=4" in table
    avg = task_average(res)
    mine = np.mean([r["accuracy"] for r in res["results"] if r["head"] == "centroid" and r["shots_per_class"] == 2])
    assert avg[("centroid", 2)][0] == pytest.approx(mine)
    png = plot(res, tmp_path / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bench_on_shared_text_data(shared_text, tiny):
    tasks, _ = prepare_tasks(["trec"], data_root=shared_text, shots=[2], seeds=[0], max_test=40,
                             embedder=Embedder(tiny, use_cache=False), progress=False)
    res = run_bench(tasks, ["zero_shot"], [2], [0], backbone="tiny", progress=False)
    assert {r["head"] for r in res["results"]} == {"linear_probe", "zero_shot"}
    assert all(r["n_train"] == 12 and r["n_test"] == 40 for r in res["results"])
