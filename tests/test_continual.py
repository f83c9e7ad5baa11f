import numpy as np
import pytest

from anytask.core import io
from anytask.experiments.stream import make_stream, run_stream
from anytask.methods.continual import EWC, ExpertLearner, FineTune, Replay, ShiftDetector
from anytask.methods.continual.nets import GrowingMLP, Reservoir, count_nonzero, prune_by_magnitude
from anytask.experiments.stream import boundary_stats
from anytask.core.errors import AnytaskError


def test_detector_fires_soon_after_a_change_and_never_on_stationary_noise():
    rng = np.random.default_rng(0)
    quiet = ShiftDetector(window=20, sensitivity=3.0, patience=2)
    assert not any(quiet.update(v) for v in 1.0 + 0.1 * rng.normal(size=2000))
    det = ShiftDetector(window=20, sensitivity=3.0, patience=2)
    losses = np.concatenate([1.0 + 0.1 * rng.normal(size=100), 3.0 + 0.1 * rng.normal(size=50)])
    fired = []
    for i, v in enumerate(losses):
        if det.update(v):
            fired.append(i)
            det.reset()  # as the learner does after a switch
    after = [i for i in fired if i >= 100]
    assert after and after[0] < 100 + 20  # found within one window of the change
    assert len(fired) - len(after) <= 1  # at most one false alarm in 100 stationary batches


def test_detector_follows_a_falling_learning_curve_without_false_alarms():
    rng = np.random.default_rng(1)
    det = ShiftDetector(window=20, sensitivity=3.0, patience=2)
    curve = 3.0 * np.exp(-np.arange(300) / 60) + 0.05 * rng.normal(size=300)
    assert not any(det.update(v) for v in curve)
    assert det.update(3.5) is False and det.update(3.5) is True  # patience 2


def test_tame_finds_every_boundary_and_reuses_the_expert_of_a_recurring_task():
    tasks = make_stream("synthetic", seed=0)
    run = run_stream("tame", tasks, seed=0)
    assert run["boundaries"]["found"] == 4 and run["boundaries"]["false_alarms"] == 0
    assert run["experts"] == 4  # 4 distinct tasks: the fifth (recurring) re-used expert 0
    assert [e["event"] for e in run["events"]][-1] == "reuse" and run["events"][-1]["expert"] == 0
    assert run["average_accuracy"] > 0.95


def test_tame_beats_fine_tuning_and_oracle_routes_by_task_id():
    tasks = make_stream("synthetic", seed=1)
    tame, fine, oracle = (run_stream(m, tasks, seed=1) for m in ("tame", "finetune", "oracle"))
    assert tame["average_accuracy"] > fine["average_accuracy"] + 0.2
    assert oracle["average_accuracy"] > 0.95 and oracle["forgetting"] < 0.05


def test_baselines_learn_and_replay_remembers():
    tasks = make_stream("synthetic", seed=2)
    fine = run_stream("finetune", tasks, seed=0)
    replay = run_stream("replay", tasks, seed=0)
    ewc = run_stream("ewc", tasks, seed=0)
    assert replay["forgetting"] < fine["forgetting"]
    assert all(0 <= r["average_accuracy"] <= 1 for r in (fine, replay, ewc))
    assert isinstance(EWC(), FineTune) and isinstance(Replay(), FineTune)


def test_save_load_round_trip_keeps_predictions(tmp_path):
    tasks = make_stream("synthetic", seed=0)
    learner = ExpertLearner(seed=0)
    for t in tasks[:3]:
        for i in range(0, len(t.X_train), 32):
            learner.partial_fit(t.X_train[i : i + 32], t.y_train[i : i + 32])
    learner.finish()
    X = np.concatenate([t.X_test for t in tasks[:3]])
    loaded = io.load(io.save(learner, tmp_path / "learner"))
    np.testing.assert_array_equal(loaded.predict(X), learner.predict(X))
    assert len(loaded.experts_) == len(learner.experts_) == 3
    loaded.partial_fit(tasks[3].X_train[:32], tasks[3].y_train[:32])  # it keeps learning


def test_bad_input_is_clear():
    learner = ExpertLearner()
    with pytest.raises(AnytaskError, match="seen no data"):
        learner.route(np.zeros((2, 4)))
    learner.partial_fit(np.ones((1, 4)), ["a"])  # a batch of a single example is fine
    with pytest.raises(AnytaskError, match="expecting 4 features"):
        learner.partial_fit(np.ones((3, 5)), ["a", "b", "c"])
    with pytest.raises(AnytaskError, match="one label per row"):
        learner.partial_fit(np.ones((3, 4)), ["a"])
    with pytest.raises(AnytaskError, match="NaN"):
        learner.partial_fit(np.full((2, 4), np.nan), ["a", "b"])
    with pytest.raises(AnytaskError, match="unknown task"):
        learner.predict(np.ones((1, 4)), task="never-seen")
    with pytest.raises(AnytaskError, match="unknown stream"):
        make_stream("cifar")


def test_stream_that_ends_mid_window_is_finished_cleanly():
    learner = ExpertLearner(window=20)
    rng = np.random.default_rng(0)
    for _ in range(5):  # fewer batches than the window: no detection, nothing pending is lost
        learner.partial_fit(rng.normal(size=(8, 6)).astype(np.float32), rng.choice(["x", "y"], size=8))
    learner.finish()
    assert learner.pending_ == [] and len(learner.experts_) == 1
    assert set(learner.predict(rng.normal(size=(4, 6)).astype(np.float32))) <= {"x", "y"}


def test_nets_grow_prune_and_reservoir_is_uniform():
    net = GrowingMLP(4, 2, hidden=8)
    net.grow(5)
    assert net.out.out_features == 5
    prune_by_magnitude(net, 0.5)
    weights = sum(p.numel() for p in net.parameters() if p.dim() == 2)
    assert count_nonzero(net) <= sum(p.numel() for p in net.parameters()) - weights // 2 + 1
    res = Reservoir(100, 1, seed=0)
    res.add(np.arange(10_000, dtype=np.float32)[:, None], np.zeros(10_000, dtype=np.int64))
    assert len(res) == 100 and 3000 < res.X.mean() < 7000  # a uniform sample, not the first 100


def test_boundary_stats_counts_delays_and_false_alarms():
    stats = boundary_stats([10, 20], [12, 15, 21], total=30)
    assert stats["found"] == 2 and stats["mean_delay_batches"] == 1.5 and stats["false_alarms"] == 1


def test_stream_cli_writes_results(tmp_path, capsys):
    from anytask.apps.cli import main

    out = tmp_path / "s.json"
    assert main(["stream", "--stream", "synthetic", "--seeds", "1", "--methods", "tame,finetune", "--no-progress",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "boundaries found 4/4" in text and out.with_suffix(".png").is_file()
    assert main(["stream", "--methods", "magic"]) == 2


def test_mnist_streams_from_the_shared_data(shared_text):
    split = make_stream("split-mnist", data_root=shared_text.parent)
    assert [t.name for t in split] == ["digits 0/1", "digits 2/3", "digits 4/5", "digits 6/7", "digits 8/9"]
    assert all(set(t.y_train) == {n[-3], n[-1]} for t, n in ((t, t.name) for t in split))
    permuted = make_stream("permuted-mnist", data_root=shared_text.parent, reverse=True)
    assert [t.name for t in permuted][0] == "permutation 4" and permuted[0].X_train.shape == (1600, 784)
    assert not np.array_equal(permuted[0].X_train.mean(0), permuted[-1].X_train.mean(0))


def test_saving_mid_stream_changes_nothing_and_keeps_held_back_batches(tmp_path):
    tasks = make_stream("synthetic", seed=0)
    learner = ExpertLearner(seed=0, prune=0.5)
    t0, t1 = tasks[0], tasks[1]
    for i in range(0, len(t0.X_train), 32):
        learner.partial_fit(t0.X_train[i : i + 32], t0.y_train[i : i + 32])
    learner.partial_fit(t1.X_train[:32], t1.y_train[:32])  # out of range once: held back (patience 2)
    assert len(learner.pending_) == 1
    params_before = learner.n_parameters()
    loaded = io.load(io.save(learner, tmp_path / "mid"))
    assert len(learner.pending_) == 1 and learner.n_parameters() == params_before  # not finished or pruned
    assert len(loaded.pending_) == 1
    np.testing.assert_array_equal(loaded.pending_[0][0], learner.pending_[0][0])
    loaded.partial_fit(t1.X_train[32:64], t1.y_train[32:64])  # the shift is confirmed after the reload
    assert [e["event"] for e in loaded.events_] == ["new", "new"]
