"""UWE (methods/retrieval/uwe.py): scorers, the many-to-many loss, tuning, the cached target space."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anytask.backbones import get_backbone, state_hash
from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.retrieval import RANKERS
from anytask.methods.retrieval.uwe import UWERanker, late_interaction, many_to_many_infonce

TARGETS = ["registered nurse", "head chef", "web developer", "truck driver", "primary school teacher"]
QUERIES = ["ward nurse", "staff nurse", "sous chef", "cook", "software developer", "front-end developer",
           "lorry driver", "hgv driver", "teacher", "class teacher"]
LINKS = ["registered nurse", "registered nurse", "head chef", "head chef", "web developer", "web developer",
         "truck driver", "truck driver", "primary school teacher", "primary school teacher"]


@pytest.fixture(scope="module")
def tiny_bert(bert_folders):
    return f"hf:{bert_folders[0]}"


def _tokens(n, t, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = F.normalize(torch.randn(n, t, d, generator=g), dim=-1)
    mask = torch.ones(n, t, dtype=torch.long)
    mask[0, t // 2:] = 0  # a shorter text: its padding must not count
    return X, mask


def test_registered_with_its_paper():
    entry = RANKERS.entry("uwe")
    assert entry.caps.input == "texts" and entry.caps.saveable and "2511.07969" in entry.reference


def test_late_interaction_by_hand_and_sli_tends_to_maxsim():
    Q, qm = _tokens(3, 5, 8, 0)
    Y, ym = _tokens(4, 6, 8, 1)
    maxsim = late_interaction(Q, qm, Y, ym, scorer="maxsim")
    for q in range(3):
        for y in range(4):
            S = Q[q, qm[q].bool()] @ Y[y, ym[y].bool()].T  # real tokens only
            assert torch.isclose(maxsim[q, y], S.max(1).values.mean(), atol=1e-6)
            A = torch.softmax(S / 0.1, dim=1)
            sli = (A * S).sum(1).mean()
            back = (torch.softmax(S / 0.1, dim=0) * S).sum(0).mean()
            assert torch.isclose(late_interaction(Q, qm, Y, ym, scorer="sli", tau_a=0.1)[q, y], sli, atol=1e-6)
            assert torch.isclose(late_interaction(Q, qm, Y, ym, scorer="sli_both", tau_a=0.1)[q, y],
                                 (sli + back) / 2, atol=1e-6)
    torch.testing.assert_close(late_interaction(Q, qm, Y, ym, scorer="sli", tau_a=1e-4), maxsim, atol=1e-4, rtol=0)
    with pytest.raises(AnytaskError, match="maxsim, sli, sli_both"):
        late_interaction(Q, qm, Y, ym, scorer="mean")


def test_many_to_many_loss_is_infonce_with_one_positive_and_averages_several():
    S = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    one = torch.zeros(4, 6, dtype=torch.bool)
    one[torch.arange(4), torch.tensor([2, 0, 5, 1])] = True
    torch.testing.assert_close(many_to_many_infonce(S, one, 0.05), F.cross_entropy(S / 0.05, torch.tensor([2, 0, 5, 1])))
    two = one.clone()
    two[0, 3] = True  # row 0 has two positives: the mean of its two -log p, rows still weigh equally
    logp = torch.log_softmax(S / 0.05, 1)
    rows = [-(logp[0, 2] + logp[0, 3]) / 2, -logp[1, 0], -logp[2, 5], -logp[3, 1]]
    torch.testing.assert_close(many_to_many_infonce(S, two, 0.05), torch.stack(rows).mean())
    none = torch.zeros(4, 6, dtype=torch.bool)
    none[1, 1] = True  # rows without a positive are left out of the mean
    torch.testing.assert_close(many_to_many_infonce(S, none, 0.05), -logp[1, 1])
    eye = torch.eye(4, dtype=torch.bool)  # a text against itself (-inf) is out of the denominator, and no NaN
    square = S[:, :4].clone().requires_grad_(True)
    pairs = torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.bool)
    loss = many_to_many_infonce(square.masked_fill(eye, float("-inf")), pairs, 0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(square.grad).all() and (square.grad.diagonal() == 0).all()
    nothing = many_to_many_infonce(S[:, :4].masked_fill(eye, float("-inf")), torch.zeros(4, 4, dtype=torch.bool), 0.05)
    assert nothing.item() == 0.0


@pytest.mark.parametrize("scorer", ["mean", "maxsim", "sli_both"])
def test_frozen_ranker_with_steps_0_is_the_backbone_and_the_cache_matches_recomputation(tiny_bert, scorer):
    backbone = get_backbone(tiny_bert)
    before = state_hash(backbone)
    ranker = UWERanker(backbone=tiny_bert, scorer=scorer, steps=0).fit(QUERIES, LINKS).set_targets(TARGETS)
    S = ranker.score(QUERIES[:4])
    assert S.shape == (4, 5) and np.isfinite(S).all()
    if scorer == "mean":  # mean pooling of the untouched layers is the backbone's own embedding
        X = F.normalize(backbone.embed(QUERIES[:4]), dim=-1) @ F.normalize(backbone.embed(TARGETS), dim=-1).T
        np.testing.assert_allclose(S, X.numpy(), atol=1e-5)
    Q, qm, qp = ranker.encode(QUERIES[:4])
    Y, ym, yp = ranker.encode(TARGETS)
    fresh = (qp @ yp.T) if scorer == "mean" else late_interaction(Q, qm, Y, ym, scorer=scorer, tau_a=0.1)
    np.testing.assert_allclose(S, fresh.numpy(), atol=1e-5)
    scores, top = ranker.search(QUERIES[:4], k=2)
    assert top.shape == (4, 2)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert state_hash(backbone) == before


def test_tuning_lowers_the_loss_and_ranks_training_links_first(tiny_bert):
    backbone = get_backbone(tiny_bert)
    before = state_hash(backbone)
    ranker = UWERanker(backbone=tiny_bert, scorer="sli_both", steps=60, batch_targets=5, lr=3e-3, seed=0)
    ranker.fit(QUERIES, LINKS, sets=[["registered nurse", "primary school teacher"]]).set_targets(TARGETS)
    curve = ranker.loss_curve_
    assert len(curve) == 60 and np.mean(curve[-10:]) < np.mean(curve[:10])
    _, top = ranker.search(QUERIES, k=1)
    hits = np.mean([TARGETS[t] == link for t, link in zip(top[:, 0], LINKS)])
    assert hits >= 0.8
    assert state_hash(backbone) == before  # the tuned layers are a copy


def test_save_and_load_round_trips_the_tuned_layers_and_targets(tiny_bert, tmp_path):
    ranker = UWERanker(backbone=tiny_bert, scorer="maxsim", steps=5, batch_targets=4, lr=1e-3).fit(QUERIES, LINKS)
    ranker.set_targets(TARGETS)
    loaded = io.load(io.save(ranker, tmp_path / "uwe"))
    np.testing.assert_allclose(loaded.score(QUERIES), ranker.score(QUERIES), atol=1e-5)
    assert loaded.loss_curve_ == ranker.loss_curve_


def test_same_seed_same_ranker(tiny_bert):
    a = UWERanker(backbone=tiny_bert, scorer="mean", steps=4, batch_targets=3, seed=7).fit(QUERIES, LINKS)
    b = UWERanker(backbone=tiny_bert, scorer="mean", steps=4, batch_targets=3, seed=7).fit(QUERIES, LINKS)
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("params, words", [
    ({"scorer": "colbert"}, "mean, maxsim, sli, sli_both"),
    ({"steps": -1}, "steps"),
    ({"tau": 0}, "tau"),
    ({"warmup": 1.0}, "warm-up"),
    ({"batch_targets": 1}, "batch_targets"),
])
def test_bad_parameters_are_clear_errors(tiny_bert, params, words):
    with pytest.raises(AnytaskError, match=words):
        UWERanker(backbone=tiny_bert, **params).fit(QUERIES, LINKS)


def test_bad_inputs_are_clear_errors(tiny_bert):
    ranker = UWERanker(backbone=tiny_bert, steps=0)
    with pytest.raises(AnytaskError, match="one target per query"):
        ranker.fit(QUERIES, LINKS[:3])
    with pytest.raises(AnytaskError, match="empty"):
        ranker.fit([], [])
    ranker.fit(QUERIES, LINKS)
    with pytest.raises(Exception, match="fitted|set_targets|targets_"):
        ranker.score(["x"])
    ranker.set_targets(TARGETS)
    with pytest.raises(AnytaskError, match="1 to 5 targets"):
        ranker.search(["x"], k=6)
    with pytest.raises(AnytaskError, match="blank"):
        ranker.score(["  "])
