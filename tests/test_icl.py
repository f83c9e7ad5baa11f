"""The in-context reasoning module, its shipped weights, the icl head, the regressor, LOO embeddings."""

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head
from anytask.methods.icl.head import SHIPPED, load_module
from anytask.methods.icl import ICLConfig, Reasoner, pretrain, sample_tasks
from anytask.backbones.loo import loo_embeddings
from anytask.methods.icl.regressor import ICLRegressor


def _blobs(n_classes=3, per_class=2, dim=24, seed=0, n_test=60):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, dim)) * 2
    y = np.repeat(np.arange(n_classes), per_class)
    yt = rng.integers(n_classes, size=n_test)
    return (means[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y, \
        (means[yt] + rng.normal(size=(n_test, dim))).astype(np.float32), yt


def test_shipped_modules_load_offline_with_their_provenance():
    for name in ("classification", "regression"):
        model = load_module(name)
        info = model.config.info
        assert model.config.task == name
        # made by the training script before it moved to anytask.methods.icl.train (same code)
        assert info["command"].startswith("python benchmarks/icl/pretrain.py") and info["trained_on"]
        assert (SHIPPED / name / "training_log.jsonl").is_file() and (SHIPPED / name / "validation.png").is_file()
        assert (SHIPPED / name / "model.safetensors").stat().st_size < 20e6


def test_missing_or_corrupted_weights_are_clear_errors(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED / "classification", folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(AnytaskError, match="checksum|corrupt"):
        load_module(str(folder))
    (folder / "model.safetensors").unlink()
    with pytest.raises(AnytaskError, match=str(folder / "model.safetensors")):
        load_module(str(folder))
    with pytest.raises(AnytaskError, match="no in-context module 'nope'"):
        load_module("nope")


def test_few_shot_from_two_examples_per_class():
    X, y, Xt, yt = _blobs(per_class=2)
    head = create_head("icl").fit(X, y)
    assert np.mean(head.predict(Xt) == yt) > 0.9


def test_output_ignores_context_order_and_follows_relabelling():
    X, y, Xt, _ = _blobs(n_classes=4, per_class=5)
    p = create_head("icl").fit(X, y).predict_proba(Xt)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(create_head("icl").fit(X[perm], y[perm]).predict_proba(Xt), p, atol=1e-4)
    relabel = np.array([2, 0, 3, 1])  # class c becomes relabel[c]; columns follow sorted labels
    p2 = create_head("icl").fit(X, relabel[y]).predict_proba(Xt)
    np.testing.assert_allclose(p2[:, relabel], p, atol=1e-4)


def test_many_classes_run_natively_and_big_contexts_are_chunked():
    X, y, Xt, yt = _blobs(n_classes=30, per_class=4, dim=64, seed=2, n_test=200)
    head = create_head("icl").fit(X, y)
    assert head.n_chunks_ == 1 and np.mean(head.predict(Xt) == yt) > 0.8
    chunked = create_head("icl", max_context=64).fit(X, y)
    assert chunked.n_chunks_ == 2 and np.mean(chunked.predict(Xt) == yt) > 0.8
    with pytest.raises(AnytaskError, match="cannot hold 2 examples of each of 30 classes"):
        create_head("icl", max_context=40).fit(X, y)


def test_head_refuses_a_regression_module():
    X, y, _, _ = _blobs()
    with pytest.raises(AnytaskError, match="regression module"):
        create_head("icl", module="regression").fit(X, y)


def test_causal_free_set_model_and_query_does_not_see_its_label():
    """Predictions for a query never depend on other queries (queries only read the context)."""
    X, y, Xt, _ = _blobs(per_class=3)
    head = create_head("icl").fit(X, y)
    np.testing.assert_allclose(head.predict_proba(Xt[:5]), head.predict_proba(Xt)[:5], atol=1e-5)


def test_tiny_module_learns_from_synthetic_tasks():
    config = ICLConfig(width=16, layers=2, hidden=32, steps=150, batch_size=8, max_classes=3, max_shots=8,
                       queries=32, lr=3e-3)
    model, history = pretrain(config, log=lambda _: None, eval_every=75)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    gen = torch.Generator().manual_seed(7)
    X, Y, Q, yq = sample_tasks(16, config, gen, C=2, shots=8)
    with torch.no_grad():
        acc = (model(X, Y, Q).argmax(-1) == yq).float().mean()
    assert acc > 0.6  # chance is 0.5


def test_regressor_recovers_a_noise_free_linear_map():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5)) * [1, 10, 0.1, 3, 1] + 5
    w = np.array([0.5, -0.1, 4.0, 0.2, 1.0])
    y = X @ w + 3
    Xt = rng.normal(size=(50, 5)) * [1, 10, 0.1, 3, 1] + 5
    reg = ICLRegressor().fit(X, y)
    assert reg.score(Xt, Xt @ w + 3) > 0.9
    with pytest.raises(AnytaskError, match="NaN"):
        ICLRegressor().fit(X, np.where(np.arange(80) == 3, np.nan, y))
    with pytest.raises(AnytaskError, match="has 4 features"):
        reg.predict(Xt[:, :4])
    with pytest.raises(AnytaskError, match="classification module"):
        ICLRegressor(module="classification").fit(X, y)


def test_loo_embeddings_on_the_tiny_backbone(tiny):
    texts = ["red apple pie", "green pear tart", "blue whale song", "grey shark fin"]
    labels = ["fruit", "fruit", "sea", "sea"]
    ctx, qry = loo_embeddings(tiny, texts, labels, ["yellow banana bread"])
    assert ctx.shape == (4, tiny.config.dim) and qry.shape == (1, tiny.config.dim)
    alone = tiny.embed(texts).numpy()
    assert not np.allclose(ctx, alone, atol=1e-4)  # the prompt context changes the embedding
    # leave-one-out: example 0's own label is not in its prompt, so relabelling it changes nothing for it
    ctx2, _ = loo_embeddings(tiny, texts, ["sea", "fruit", "sea", "sea"], [])
    np.testing.assert_allclose(ctx2[0], ctx[0], atol=1e-6)
    assert not np.allclose(ctx2[1], ctx[1], atol=1e-6)
    # a context longer than the backbone takes drops its earliest examples instead of failing
    long_ctx, _ = loo_embeddings(tiny, [f"word{i} " * 10 for i in range(12)], list(range(12)), [])
    assert np.isfinite(long_ctx).all()
    with pytest.raises(AnytaskError, match="3 texts but 2 labels"):
        loo_embeddings(tiny, texts[:3], labels[:2])


def test_reasoner_round_trips_through_io(tmp_path):
    model = Reasoner(ICLConfig(width=8, layers=1, hidden=8))
    loaded = io.load(io.save(model, tmp_path / "r"))
    X, Y = torch.randn(1, 6, 5), F.one_hot(torch.tensor([[0, 1, 0, 1, 2, 2]]), 3).float()
    Q = torch.randn(1, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(X, Y, Q), model(X, Y, Q))
