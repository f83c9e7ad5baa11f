"""The multi-task family: the estimator contract over a dict of tasks, bad input, each method's own checks
(DTRN's hypernetwork and SE weights, TaskExpert's gates and memory, the router's frozen old tasks), the
conflict generator and Lasso A-MTRL's relevance and allocation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data.multitask import conflict_tasks, task_directions
from anytask.methods.multitask import ALLOCATIONS, MULTITASK, allocate, relevance
from anytask.methods.multitask.amtrl import LinearSetting, fit_representation, run_linear


def _tasks(n_tasks=3, n=60, d=16, rho=0.5, seed=0, views=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_tasks * n + 400, d)).astype(np.float32)
    Ys, _ = conflict_tasks(X, n_tasks, rho, rank=8, flip=0.0, seed=seed)
    if views:
        X = np.stack([X + 0.1 * rng.normal(size=X.shape).astype(np.float32) for _ in range(views)], 1)
    train = {f"t{i}": (X[i * n:(i + 1) * n], Ys[i][i * n:(i + 1) * n]) for i in range(n_tasks)}
    test = {f"t{i}": (X[-400:], Ys[i][-400:]) for i in range(n_tasks)}
    return train, test


@pytest.mark.parametrize("name", ["independent", "shared_bottom", "mmoe", "ple", "dtrn", "taskexpert", "router"])
def test_every_method_learns_linear_tasks_and_its_loss_falls(name):
    train, test = _tasks()
    m = MULTITASK.get(name)(steps=150, hidden=32, seed=0, skip=False).fit(train)
    assert np.mean(m.loss_curve_[-10:]) < np.mean(m.loss_curve_[:10])
    for t, (X, y) in test.items():
        assert m.score(X, y, task=t) > 0.7, (name, t)


def test_bad_input_is_a_clear_error():
    X, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    cls = MULTITASK.get("mmoe")
    with pytest.raises(AnytaskError, match="same backbone"):
        cls(steps=1).fit({"a": (X, y), "b": (np.zeros((4, 5), np.float32), y)})
    with pytest.raises(AnytaskError, match="empty"):
        cls(steps=1).fit({"a": (X, y), "b": (np.zeros((0, 3), np.float32), np.array([]))})
    with pytest.raises(AnytaskError, match="one class"):
        cls(steps=1).fit({"a": (X, np.zeros(4))})
    with pytest.raises(AnytaskError, match="collide"):
        cls(steps=1).fit({"Sst2": (X, y), "sst2 ": (X, y)})
    with pytest.raises(AnytaskError, match="collide"):
        cls(steps=1).fit({"a": (X, np.array([1, "1", 0, 1], dtype=object))})
    with pytest.raises(AnytaskError, match="mapping"):
        cls(steps=1).fit([(X, y)])
    with pytest.raises(AnytaskError, match="no tasks"):
        cls(steps=1).fit({})
    with pytest.raises(AnytaskError, match="one label per row"):
        cls(steps=1).fit({"a": (X, y[:3])})
    with pytest.raises(AnytaskError, match="NaN"):
        cls(steps=1).fit({"a": (np.full((4, 3), np.nan, np.float32), y)})
    m = cls(steps=2).fit({"a": (X, y), "b": (X, y)})
    with pytest.raises(AnytaskError, match="unknown task 'c'"):
        m.predict(X, task="c")
    with pytest.raises(AnytaskError, match="task="):
        m.predict(X)
    with pytest.raises(AnytaskError, match="shape"):
        m.predict(np.zeros((2, 5), np.float32), task="a")
    with pytest.raises(AnytaskError, match="not fitted"):
        cls().predict(X, task="a")


def test_one_task_needs_no_task_name_and_views_are_flattened_for_flat_methods():
    train, test = _tasks(n_tasks=1, views=2)
    m = MULTITASK.get("shared_bottom")(steps=20, hidden=8).fit(train)
    X, y = test["t0"]
    assert m.predict(X).shape == (400,) and m.in_shape_ == (2, 16)


def test_dtrn_hypernetwork_shapes_and_se_weights():
    from anytask.methods.multitask.dtrn import HyperActivation

    hyper = HyperActivation(d=8, hidden=5, cond=6, rank=2)
    w1, b1, w2 = hyper.params(torch.randn(6))
    assert w1.shape == (32, 5) and b1.shape == (5,) and w2.shape == (5,)
    pooled = hyper(torch.randn(3, 7, 8), torch.randn(3, 8), torch.randn(6))
    assert pooled.shape == (3, 8)
    train, test = _tasks(views=3)
    m = MULTITASK.get("dtrn")(steps=30, hidden=16, fields=4, field_dim=8, seed=0).fit(train)
    a = m.task_field_weights(test["t0"][0], task="t0")
    assert a.shape == (400, 4 + 3 + 2)  # 4 chunks, 3 views, 2 interest vectors (chunk and view sequences)
    assert (a > 0).all() and (a < 1).all()
    assert not np.allclose(a, m.task_field_weights(test["t0"][0], task="t1"))  # the weights are per task
    with pytest.raises(AnytaskError, match="divisor"):
        MULTITASK.get("dtrn")(steps=1, fields=5).fit(train)


def test_dtrn_ablations_change_the_bottom():
    train, _ = _tasks()
    full = MULTITASK.get("dtrn")(steps=2, fields=4, field_dim=8).fit(train)
    bare = MULTITASK.get("dtrn")(steps=2, fields=4, field_dim=8, tim=False, trm=False).fit(train)
    assert bare.n_parameters() < full.n_parameters()
    assert bare.net_.body.hyper is None and bare.net_.body.se is None


def test_taskexpert_gates_sum_to_one_over_experts_and_memory():
    train, test = _tasks(views=3)
    m = MULTITASK.get("taskexpert")(steps=30, hidden=16, experts=3, seed=0).fit(train)
    out, gates = m.net_.body.run(torch.from_numpy(test["t0"][0]), 0)
    assert out.shape == (400, 16) and len(gates) == 3
    for g in gates:
        assert g.shape == (400, 4) and torch.allclose(g.sum(-1), torch.ones(400))
    stats = m.gate_stats(test["t0"][0], task="t0")
    assert stats["mean_gate"].shape == (3, 4) and 0 <= stats["entropy"] <= stats["max_entropy"]
    assert MULTITASK.get("taskexpert")(steps=2, memory=False, update="gated").fit(train).net_.body.write is None


def test_taskexpert_with_one_expert_and_no_memory_is_the_shared_bottom():
    """N = 1 and no memory: the gate is 1, the task feature is the one expert's output (the shared baseline)."""
    train, test = _tasks()
    m = MULTITASK.get("taskexpert")(steps=5, hidden=8, experts=1, memory=False, skip=False, dropout=0).fit(train)
    x = torch.from_numpy(test["t1"][0])
    body = m.net_.body
    out, gates = body.run(x, 1)
    assert torch.equal(gates[0], torch.ones(400, 1))
    assert torch.allclose(body(x, 1), body.heads[1](body.experts[0][0](x)))


def test_router_adds_a_task_without_changing_old_predictions(tmp_path):
    train, test = _tasks(n_tasks=4)
    first = {k: train[k] for k in ("t0", "t1", "t2")}
    m = MULTITASK.get("router")(steps=100, hidden=16, experts=3, seed=0).fit(first)
    before = {t: m.decision_function(test[t][0], task=t) for t in first}
    n_params = m.n_parameters()
    m.add_task("t3", *train["t3"])
    for t in first:
        assert np.array_equal(m.decision_function(test[t][0], task=t), before[t]), t
    assert m.tasks_ == ["t0", "t1", "t2", "t3"] and m.expert_counts_ == [3, 3, 3, 4]
    assert m.n_parameters() > n_params
    assert m.score(*test["t3"], task="t3") > 0.65  # learned through the frozen router (chance 0.5)
    back = io.load(io.save(m, tmp_path / "router"))
    for t in m.tasks_:
        assert np.array_equal(back.decision_function(test[t][0], task=t), m.decision_function(test[t][0], task=t))
    with pytest.raises(AnytaskError, match="already"):
        m.add_task("T3", *train["t3"])
    with pytest.raises(AnytaskError, match="same backbone"):
        m.add_task("t4", np.zeros((4, 5), np.float32), np.array([0, 1, 0, 1]))


def test_router_guesses_the_task_of_a_request():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 3
    tasks = {f"t{i}": ((centers[i] + rng.normal(size=(50, 16))).astype(np.float32), rng.integers(0, 2, 50))
             for i in range(3)}
    m = MULTITASK.get("router")(steps=5, hidden=8).fit(tasks)
    guess = m.predict_task(np.vstack([tasks[t][0] for t in tasks]))
    assert np.mean(guess == np.repeat(list(tasks), 50)) > 0.95


def test_conflict_knob_sets_the_cosine_between_task_directions():
    rng = np.random.default_rng(0)
    for rho in (0.0, 0.5, 1.0, -0.6):
        W = task_directions(4, rho, 10, rng)
        cos = W @ W.T
        assert np.allclose(np.diag(cos), 1)
        off = cos[~np.eye(4, dtype=bool)]
        if rho >= 0:
            assert np.allclose(off, rho)
        else:
            assert np.allclose(cos[0, 1], rho) and np.allclose(cos[0, 2], -rho)
    X = rng.normal(size=(300, 20))
    same, _ = conflict_tasks(X, 2, 1.0, flip=0.0)
    assert np.array_equal(same[0], same[1])
    opposite, _ = conflict_tasks(X, 2, -1.0, flip=0.0)
    assert np.array_equal(opposite[0], 1 - opposite[1])
    with pytest.raises(AnytaskError, match="rho"):
        conflict_tasks(X, 2, 1.5)


def test_lasso_recovers_a_planted_sparse_relevance():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(30, 60))
    nu = np.zeros(60)
    nu[[3, 17, 40]] = [1.0, -0.8, 1.2]
    est = relevance(W, W @ nu, "l1", alpha=1e-3)
    assert set(np.flatnonzero(np.abs(est) > 1e-3)) == {3, 17, 40}
    exact = relevance(W, W @ nu, "l1")
    assert np.allclose(exact, nu, atol=1e-6)
    l2 = relevance(W, W @ nu, "l2")
    assert np.allclose(W @ l2, W @ nu) and np.abs(l2).sum() > np.abs(exact).sum()


def test_allocation_sums_to_the_budget_and_keeps_the_floor():
    for rule in ALLOCATIONS.names():
        n = allocate(ALLOCATIONS.get(rule)(np.array([0.0, 3.0, -1.0, 0.0, 0.5])), 101, n_min=2)
        assert n.sum() == 101 and (n >= 2).all()
    assert allocate(np.array([0.0, 1.0, 0.0]), 10).tolist() == [0, 10, 0]
    assert allocate(np.zeros(4), 8).tolist() == [2, 2, 2, 2]
    assert allocate(np.array([0.0, 1.0]), 10, n_min=3).tolist() == [3, 7]
    with pytest.raises(AnytaskError, match="below"):
        allocate(np.ones(5), 3, n_min=1)


def test_representation_is_recovered_in_the_linear_setting():
    s = LinearSetting(d=12, k=3, M=10, sparsity=2, noise=0.1, seed=0)
    rng = np.random.default_rng(0)
    B, W = fit_representation([s.sample(m, 40, rng) for m in range(s.M)], s.k)
    # same span: the projection onto B^ leaves the true B nearly unchanged
    assert np.linalg.norm(B @ B.T @ s.B - s.B) < 0.05
    rows = run_linear(s, "nu1", [100, 200], n_target=10, seed=0)
    assert [r["total"] for r in rows] == [100, 300] and rows[-1]["excess_risk"] < 0.5


def test_layer_views_end_with_the_backbone_embedding(minilm):
    from anytask.backbones import layer_embeddings, state_hash

    texts = ["the match ended in a draw", "shares fell on Monday", "a short one"]
    before = state_hash(minilm)
    V = layer_embeddings(minilm, texts, layers=(2, 6))
    assert V.shape == (3, 2, 384) and np.allclose(np.linalg.norm(V, axis=-1), 1, atol=1e-5)
    assert np.allclose(V[:, 1], minilm.embed(texts).numpy(), atol=1e-5)
    assert not np.allclose(V[:, 0], V[:, 1], atol=1e-2)
    assert state_hash(minilm) == before
    with pytest.raises(AnytaskError, match="pick from 0"):
        layer_embeddings(minilm, texts, layers=(7,))


def test_layer_views_need_an_encoder_with_layers():
    from anytask.backbones import create_backbone, layer_embeddings

    with pytest.raises(AnytaskError, match="does not expose"):
        layer_embeddings(create_backbone("tiny"), ["a"], layers=(1,))


def _text_root(root):
    import json

    from anytask.data import make_topic_task

    train, test = make_topic_task(20, seed=0)
    for task, label in [("topic", lambda y: y), ("is_sport", lambda y: "yes" if y == "sports" else "no")]:
        (root / task).mkdir(parents=True)
        for split, data in [("train", train), ("test", test)]:
            rows = [json.dumps({"text": x, "label": label(y)}) for x, y in zip(data.X, data.y)]
            (root / task / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    return root


def test_bench_trains_tasks_together_beside_the_baseline(tmp_path):
    import json

    from anytask.apps.cli import main

    root, out = _text_root(tmp_path / "data"), tmp_path / "mt.json"
    assert main(["bench", "--backbone", "tiny", "--data-root", str(root), "--tasks", "topic,is_sport",
                 "--multitask", "shared_bottom,router", "--shots", "3", "--seeds", "2", "--max-test", "30",
                 "--out", str(out), "--no-progress", "-q"]) == 0
    res = json.loads(out.read_text())
    assert res["heads"] == ["linear_probe", "mt:shared_bottom", "mt:router"] and res["multitask"] == ["shared_bottom",
                                                                                                      "router"]
    rows = [r for r in res["results"] if r["head"] == "mt:router"]
    assert {(r["task"], r["seed"]) for r in rows} == {(t, s) for t in ("topic", "is_sport") for s in (0, 1)}
    base = {(r["task"], r["seed"]): r["n_train"] for r in res["results"] if r["head"] == "linear_probe"}
    assert all(base[(r["task"], r["seed"])] == r["n_train"] for r in rows)  # the same k-shot samples
    assert "mt:router" in out.with_suffix(".md").read_text()


def test_bench_multitask_needs_one_feature_space(tmp_path, capsys):
    from anytask.apps.cli import main

    assert main(["bench", "--tasks", "sklearn:wine,sklearn:iris", "--multitask", "mmoe", "--shots", "2", "--seeds",
                 "1", "--out", str(tmp_path / "x.json"), "--no-progress"]) == 2
    assert "one feature space" in capsys.readouterr().err
    assert main(["bench", "--tasks", "sklearn:wine,sklearn:iris", "--multitask", "mmeo", "--out",
                 str(tmp_path / "x.json"), "--no-progress"]) == 2
    assert "Did you mean 'mmoe'" in capsys.readouterr().err


def test_fit_trunk_gives_one_head_per_source_and_zero_for_unsampled_ones():
    from anytask.methods.multitask.amtrl import fit_trunk

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12)).astype(np.float32)
    sources = [(X[:80], (X[:80, 0] > 0).astype(int)), (np.zeros((0, 12)), np.zeros(0)),
               (X[80:], (X[80:, 1] > 0).astype(int))]
    feats, W = fit_trunk(sources, dim=8, steps=200, seed=0)
    assert feats(X).shape == (200, 8) and W.shape == (8, 3)
    assert np.all(W[:, 1] == 0) and np.abs(W[:, 0]).sum() > 0
    with pytest.raises(AnytaskError, match="no source"):
        fit_trunk([(np.zeros((0, 12)), np.zeros(0))])


def test_skip_can_read_the_last_view_only(tmp_path):
    train, test = _tasks(views=3)
    m = MULTITASK.get("router")(steps=20, hidden=8, skip="last").fit(train)
    assert m.net_.skips[0].in_features == 16
    m.add_task("new", *train["t0"])
    assert m.net_.skips[-1].in_features == 16
    back = io.load(io.save(m, tmp_path / "m"))
    X = test["t1"][0]
    assert np.array_equal(back.decision_function(X, task="t1"), m.decision_function(X, task="t1"))
    with pytest.raises(AnytaskError, match="skip="):
        MULTITASK.get("mmoe")(steps=1, skip="first").fit(train)


def test_a_failed_add_task_leaves_the_group_as_it_was(monkeypatch):
    train, test = _tasks(n_tasks=3)
    m = MULTITASK.get("router")(steps=10, hidden=8).fit({k: train[k] for k in ("t0", "t1")})
    before = m.decision_function(test["t0"][0], task="t0")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(m, "_train", boom)
    with pytest.raises(KeyboardInterrupt):
        m.add_task("t2", *train["t2"])
    assert m.tasks_ == ["t0", "t1"] and m.expert_counts_ == [4, 4] and len(m.net_.body.experts) == 4
    assert np.array_equal(m.decision_function(test["t0"][0], task="t0"), before)


def _xor_and_linear(n=90, d=4, seed=0):
    """Two tasks a linear probe cannot learn (the sign of x0 * x1, shared) and one it can (x2 > 0), on 2 views."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3 * n + 300, 2, d)).astype(np.float32)
    xor = (X[:, -1, 0] * X[:, -1, 1] > 0).astype(int)
    lin = (X[:, -1, 2] > 0).astype(int)
    train = {"xor_a": (X[:n], xor[:n]), "xor_b": (X[n:2 * n], xor[n:2 * n]),
             "linear": (X[2 * n:3 * n], lin[2 * n:3 * n])}
    test = {"xor_a": (X[-300:], xor[-300:]), "xor_b": (X[-300:], xor[-300:]), "linear": (X[-300:], lin[-300:])}
    return train, test


def test_guarded_keeps_the_joint_model_only_where_cross_validation_says_it_helps():
    from anytask.methods.multitask.guarded import probe_cv

    train, test = _xor_and_linear()
    m = MULTITASK.get("guarded")(base="shared_bottom", hidden=32, steps=200, lr=1e-2, skip=False, Cs=(0.1, 10.0),
                                 seed=0).fit(train)
    assert m.choice_["xor_a"] == m.choice_["xor_b"] == "joint"  # no linear probe can fit a sign of a product
    assert m.choice_["linear"].startswith("probe")
    acc = m.cv_accuracy_["xor_a"]
    assert acc["joint"] > max(acc["probe_last"], acc["probe_views"]) and set(acc) == {"joint", "probe_last",
                                                                                       "probe_views"}
    assert m.model_.steps == 200 and m.model_.hidden == 32  # the shared parameters go to the base
    for t in ("xor_a", "xor_b"):  # joint tasks answer exactly as the base model refitted on all rows
        assert np.array_equal(m.predict(test[t][0], task=t), m.model_.predict(test[t][0], task=t))
        assert m.score(*test[t], task=t) > 0.75
    X, y = train["linear"]
    view = X[:, -1] if m.choice_["linear"] == "probe_last" else X.reshape(len(X), -1)
    clf = probe_cv(view, y, m.Cs, m.folds, m.seed)
    Xt = test["linear"][0]
    Vt = Xt[:, -1] if m.choice_["linear"] == "probe_last" else Xt.reshape(len(Xt), -1)
    assert np.array_equal(m.predict(Xt, task="linear"), clf.predict(Vt))
    np.testing.assert_allclose(m.predict_proba(Xt, task="linear"), clf.predict_proba(Vt), atol=1e-5)


def test_guarded_falls_back_to_probes_when_the_joint_model_has_not_learned(tmp_path):
    from anytask.methods.multitask.head import MultiTaskHead

    train, test = _tasks(n_tasks=2, n=60)
    m = MULTITASK.get("guarded")(base="mmoe", steps=1, hidden=8, skip=False).fit(train)
    assert set(m.choice_.values()) == {"probe_last"}  # (N, D) features: no views candidate
    assert set(m.cv_accuracy_["t0"]) == {"joint", "probe_last"}
    head = MultiTaskHead.from_group(m, "t1", group="g")  # served like any group member, and saved on its own
    back = io.load(io.save(head, tmp_path / "member"))
    X = test["t1"][0]
    assert np.array_equal(back.predict_proba(X), m.predict_proba(X, task="t1"))
    assert back.model_.choice_ == m.choice_


def test_guarded_bad_input_and_tiny_tasks():
    train, _ = _tasks(n_tasks=2, n=40)
    cls = MULTITASK.get("guarded")
    for kw, msg in [({"base": "guarded"}, "base="), ({"base": "nope"}, "base="), ({"folds": 1}, "folds="),
                    ({"Cs": ()}, "Cs="), ({"Cs": (0.0, 1.0)}, "Cs=")]:
        with pytest.raises(AnytaskError, match=msg):
            cls(steps=1, **kw).fit(train)
    X, _ = train["t0"]
    tiny = {"t0": train["t0"], "one_rare": (X[:5], np.array([0, 0, 0, 0, 1]))}  # class 1 sits out 2 of 3 folds
    m = cls(steps=2, hidden=4).fit(tiny)
    assert m.predict(X[:5], task="one_rare").shape == (5,)


def test_guard_rules_pick_the_best_or_the_simplest_within_one_standard_error():
    from anytask.methods.multitask.guarded import choose

    same = np.array([1, 0] * 32, bool)
    one_more = same.copy()
    one_more[1] = True  # right on one more row of 64
    hits = {"probe_last": same, "probe_views": one_more, "joint": same}
    assert choose(hits, "best") == "probe_views" and choose(hits, "one_se") == "probe_last"
    assert choose({"probe_last": same, "joint": same}, "best") == "probe_last"  # a tie goes to the simpler
    far = np.ones(64, bool)  # right everywhere: far beyond one standard error
    assert choose({"probe_last": same, "probe_views": one_more, "joint": far}, "one_se") == "joint"
    with pytest.raises(AnytaskError, match="rule="):
        MULTITASK.get("guarded")(rule="lasso", steps=1).fit(_tasks(n_tasks=2, n=30)[0])
