"""Alignment (methods/alignment): BrainCLIP's modality mapper (card 12), MADELEINE's multi-view bag encoder
(card 13), the synthetic signals they are benchmarked on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import normalize

from anytask.core.errors import AnytaskError
from anytask.data.signals import synthetic_slides, synthetic_voxels
from anytask.methods.alignment import BagEncoder, MeanPool, ModalityMapper, got_loss, info_nce


def test_info_nce_is_lowest_for_identical_views_and_masks_shared_captions():
    a = normalize(torch.randn(16, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    b = normalize(a + 0.5 * torch.randn(16, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    assert info_nce(a, a, 0.1) < info_nce(a, b, 0.1) < info_nce(a, b[torch.randperm(16)], 0.1)
    none = torch.zeros(16, 16, dtype=torch.bool)
    assert torch.allclose(info_nce(a, b, 0.1, positives=none), info_nce(a, b, 0.1))
    same = torch.ones(16, 16, dtype=torch.bool)  # every row a positive of every other: nothing to contrast
    assert info_nce(a, b, 0.1, positives=same) == pytest.approx(0.0, abs=1e-6)


def test_a_mapper_recovers_a_noise_free_linear_signal():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(300, 16)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    V = E @ rng.normal(size=(16, 40)).astype(np.float32)  # zero noise, linear R
    m = ModalityMapper(hidden=64, lambda_t=0.0, epochs=30, batch_size=64, dropout=0.0, lr=3e-3).fit(V, E)
    Z = m.transform(V)
    top1 = np.mean(np.argmax(Z @ E.T, axis=1) == np.arange(300))
    assert top1 > 0.9


def test_zero_shot_through_the_mapper_is_at_chance_untrained_and_far_above_once_trained():
    rng = np.random.default_rng(0)
    C = normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(3)), dim=-1).numpy()  # class prompts
    y = rng.integers(0, 4, size=400)
    E = C[y] + 0.3 * rng.normal(size=(400, 16))
    V = np.maximum(E @ rng.normal(size=(16, 50)), 0) + 0.1 * rng.normal(size=(400, 50))
    untrained = ModalityMapper(hidden=32, epochs=0).fit(V, E, C[y])
    trained = ModalityMapper(hidden=32, epochs=20, batch_size=64, lr=3e-3).fit(V[:300], E[:300], C[y[:300]])
    acc = [np.mean(np.argmax(m.transform(V[300:]) @ C.T, axis=1) == y[300:]) for m in (untrained, trained)]
    assert acc[0] < 0.5 and acc[1] > 0.8


def test_warm_start_continues_from_the_fitted_weights():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(64, 10)).astype(np.float32), rng.normal(size=(64, 4)).astype(np.float32)
    m = ModalityMapper(hidden=8, epochs=5, lambda_t=0).fit(X, T)
    first = m.net_[0].weight.clone()
    m.set_params(warm_start=True, epochs=1).fit(X, T)
    cold = ModalityMapper(hidden=8, epochs=1, lambda_t=0).fit(X, T)
    assert (m.net_[0].weight - first).abs().max() < (cold.net_[0].weight - first).abs().max()


def test_mapper_bad_input_is_a_clear_error():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(20, 10)).astype(np.float32), rng.normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(AnytaskError, match="captions is None"):
        ModalityMapper().fit(X, T)
    with pytest.raises(AnytaskError, match="one > 0"):
        ModalityMapper(lambda_i=0, lambda_t=0).fit(X, T, T)
    with pytest.raises(AnytaskError, match="one target embedding per signal"):
        ModalityMapper(lambda_t=0).fit(X, T[:5])
    m = ModalityMapper(hidden=8, epochs=1, lambda_t=0).fit(X, T)
    with pytest.raises(AnytaskError, match="expecting 10 features"):
        m.transform(X[:, :7])


def test_voxels_carry_the_requested_share_of_signal():
    E = np.random.default_rng(0).normal(size=(2000, 16))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    clean, noisy = synthetic_voxels(E, r2=1.0, n_voxels=50), synthetic_voxels(E, r2=0.3, n_voxels=50)
    share = clean.var(0).mean() / noisy.var(0).mean()
    assert share == pytest.approx(0.3, abs=0.03)
    assert not np.array_equal(synthetic_voxels(E, seed=1, n_voxels=50), noisy)  # another subject


def test_bag_attention_sums_to_one_and_padding_changes_nothing():
    bags, _ = synthetic_slides(20, min_patches=5, max_patches=30, seed=0)
    enc = BagEncoder(dim=16, epochs=1, batch_size=10, max_tokens=4, local_pairs=2).fit(bags)
    att = enc.attention(bags[0])
    assert att.shape == (2, len(bags[0][0])) and np.allclose(att.sum(1), 1.0, atol=1e-5)
    alone = enc.transform([bags[0]])
    together = enc.transform(bags)[:1]  # padded to the batch's largest bag
    assert np.allclose(alone, together, atol=1e-5)


def test_got_loss_is_smallest_for_the_same_tokens_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 6, generator=g, dtype=torch.double, requires_grad=True)
    b = torch.randn(8, 6, generator=g, dtype=torch.double)
    same, other = got_loss(a, a.detach().clone()), got_loss(a, b)
    assert same < other
    other.backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_missing_views_are_left_out_not_zero_filled():
    bags, _ = synthetic_slides(24, min_patches=5, max_patches=20, missing=0.5, seed=0)
    assert any(v is None for b in bags for v in b[1:])
    enc = BagEncoder(dim=8, epochs=2, batch_size=12, max_tokens=3, local_pairs=2).fit(bags)
    assert np.isfinite(enc.loss_curve_).all()


@pytest.mark.slow
def test_cross_view_pretraining_beats_mean_pooling_few_shot_on_synthetic_slides():
    from anytask.methods.heads import create_head

    bags, y = synthetic_slides(400, min_patches=20, max_patches=60, seed=0)
    test, yt = synthetic_slides(400, min_patches=20, max_patches=60, seed=1)
    enc = BagEncoder(local_weight=0, epochs=15, dim=64).fit(bags)
    shots = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(4)])  # 10 labelled slides per class

    def probe(e):
        return np.mean(create_head("linear_probe").fit(e.transform(bags)[shots], y[shots]).predict(e.transform(test))
                       == yt)

    assert probe(enc) > probe(MeanPool().fit(bags)) + 0.05


@pytest.mark.parametrize("bags,match", [([], "no bags"), ([[None, np.ones((3, 4))]], "no first view"),
                                        ([[np.ones((3, 4)), np.ones((3, 5))]], "widths"),
                                        ([[np.ones((3, 4))], [np.ones((3, 4)), np.ones((2, 4))]], "numbers of views"),
                                        ([[np.ones((3, 4)), np.full((2, 4), np.nan)]], "NaN")])
def test_bag_bad_input_is_a_clear_error(bags, match):
    with pytest.raises(AnytaskError, match=match):
        BagEncoder(epochs=1).fit(bags)
