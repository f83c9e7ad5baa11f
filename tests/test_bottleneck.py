"""The Consciousness Prior's bottleneck (card 39): the factor-graph data, its exact posterior and shift, and the
top-k bottleneck finding a target's two parents."""

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.methods.mechanisms.bottleneck import (AttentionBottleneck, DenseMLP, _Selector, factor_graph,
                                                   split_target)


def test_the_graph_its_posterior_and_the_shift():
    g, shifted = factor_graph(seed=3)
    assert len(g.parents[g.target]) == 2 and set(g.parents[g.target]) <= g.blanket() and g.target not in g.blanket()
    X = g.sample(3000, np.random.default_rng(0))
    post = g.posterior(X)
    assert post.shape == (3000, 3) and np.allclose(post.sum(1), 1)
    # the posterior is calibrated on its own samples: mean predicted probability of the true value ~ its frequency
    assert abs(post[np.arange(3000), X[:, g.target]].mean() - (post ** 2).sum(1).mean()) < 0.02
    # the shift redraws every table but the target's and its children's: p(target | blanket) is unchanged
    Xs = shifted.sample(500, np.random.default_rng(1))
    np.testing.assert_allclose(g.posterior(Xs), shifted.posterior(Xs))
    assert any(not np.array_equal(a, b) for a, b in zip(g.tables, shifted.tables))
    with pytest.raises(AnytaskError):
        factor_graph(n_vars=3)


def test_top_k_keeps_exactly_k_and_its_scores_get_gradients():
    sel = _Selector(n_vars=6, values=3, width=8, k=2, classes=3)
    x = torch.randint(3, (5, 6))
    w, _ = sel.weights(x)
    assert ((w > 0).sum(1) == 2).all() and torch.allclose(w.sum(1), torch.ones(5))
    sel(x).sum().backward()
    assert sel.query.grad is not None and sel.query.grad.abs().sum() > 0


def test_the_bottleneck_finds_the_two_variables_the_target_depends_on():
    rng = np.random.default_rng(0)
    X = rng.integers(3, size=(1500, 8))
    y = (X[:, 2] + X[:, 5]) % 3  # depends on exactly two variables
    model = AttentionBottleneck(k=2, n_values=3, epochs=40, seed=0).fit(X, y)
    assert np.mean(model.predict(X) == y) > 0.9
    assert set(np.argsort(-model.selected(X))[:2]) == {2, 5}
    dense = DenseMLP(n_values=3, epochs=40).fit(X, y)
    assert dense.predict_proba(X[:3]).shape == (3, 3)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(AnytaskError, match="integer codes"):
        AttentionBottleneck().fit(np.random.rand(10, 3), np.zeros(10))
    with pytest.raises(AnytaskError, match="k=9"):
        AttentionBottleneck(k=9).fit(np.zeros((10, 3), dtype=int), np.arange(10) % 2)


def test_split_target_removes_the_target_column():
    g, _ = factor_graph(seed=0)
    X = g.sample(10, np.random.default_rng(0))
    inputs, target = split_target(g, X)
    assert inputs.shape == (10, len(g.parents) - 1) and np.array_equal(target, X[:, g.target])
