"""RLQ's image mechanism (card 11): the synthetic people and their degradations, the alternating schedule, the
teacher without gradient, CAP's inputs, re-identification metrics and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.data.stickfigures import degrade, external_images, stick_figures
from anytask.methods.distill.rlq_reid import RLQReID, batch_hard_triplet, reid_metrics


@pytest.fixture(scope="module")
def people():
    return stick_figures(4, sessions=2, frames=3, seed=0)


def test_people_keep_their_body_and_change_clothes_between_sessions(people):
    x, ids, sess = people["images"], people["ids"], people["sessions"]
    assert x.shape == (24, 3, 64, 32) and x.min() >= 0 and x.max() <= 1
    assert ids.tolist() == [i for i in range(4) for _ in range(6)] and people["pose"].shape == (24, 5)
    assert len(set(people["gender"][ids == 0])) == 1  # a stable attribute of the identity
    np.testing.assert_array_equal(stick_figures(4, 2, 3, seed=0)["images"], x)  # deterministic under the seed
    # the most common non-background colour of a person changes between sessions (new clothes)
    def dominant(img):
        px = np.round(img.reshape(3, -1).T, 2)
        px = px[px.max(1) - px.min(1) > 0.05]
        vals, counts = np.unique(px, axis=0, return_counts=True)
        return tuple(vals[counts.argmax()])
    assert dominant(x[(ids == 0) & (sess == 0)][0]) != dominant(x[(ids == 0) & (sess == 1)][0])
    with pytest.raises(AnytaskError, match="n_ids"):
        stick_figures(0)


def test_degradations_are_deterministic_under_a_seed_and_lose_detail(people):
    x = people["images"]
    before = x.copy()
    for kind in ("blur", "pixelate", "motion", "mixed"):
        a, b = degrade(x, kind, seed=3), degrade(x, kind, seed=3)
        np.testing.assert_array_equal(a, b)
        assert a.shape == x.shape
        # less high-frequency energy than the clean images
        assert np.abs(np.diff(a, axis=3)).mean() < np.abs(np.diff(x, axis=3)).mean(), kind
    assert not np.array_equal(degrade(x, "mixed", seed=3), degrade(x, "mixed", seed=4))
    np.testing.assert_array_equal(x, before)  # the input is untouched
    with pytest.raises(AnytaskError, match="degradation"):
        degrade(x, "fog")
    with pytest.raises(AnytaskError, match="colour images"):
        degrade(x[:, 0])


def test_external_images_are_people_sized_and_unlabelled():
    e = external_images(5, seed=0)
    assert e.shape == (5, 3, 64, 32) and 0 <= e.min() and e.max() <= 1


def test_tad_alternates_with_reid_and_its_teacher_gets_no_gradient(people):
    ext = external_images(32, seed=1)
    m = RLQReID(steps=3, ids_per_batch=2, per_id=2, dim=8, pose_clusters=2).fit(
        people["images"], people["ids"], pose=people["pose"], gender=people["gender"], external=ext)
    assert m.schedule_ == ["reid", "tad"] * 3
    assert all(not p.requires_grad and p.grad is None for p in m.teacher_.parameters())
    # the teacher moved (an EMA of the model), but is not the model
    fresh = RLQReID(steps=0, dim=8, pose_clusters=2, ids_per_batch=2, per_id=2).fit(
        people["images"], people["ids"], pose=people["pose"], gender=people["gender"], external=ext)
    assert any(not torch.equal(a, b) for a, b in zip(m.teacher_.parameters(), fresh.teacher_.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(m.teacher_.parameters(), m.net_.parameters()))
    f = m.transform(people["images"])
    assert f.shape == (24, 8) and np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    assert m.pose_features(people["images"][:2]).shape == (2, 8)
    plain = RLQReID(tad=False, cap=False, steps=2, ids_per_batch=2, per_id=2, dim=8).fit(people["images"],
                                                                                          people["ids"])
    assert plain.schedule_ == ["reid", "reid"] and plain.teacher_ is None


def test_a_small_model_learns_to_tell_people_apart(people):
    torch.manual_seed(0)
    data = stick_figures(6, sessions=1, frames=8, seed=1)
    m = RLQReID(tad=False, cap=False, steps=60, ids_per_batch=6, per_id=4, dim=16).fit(data["images"], data["ids"])
    f = m.transform(data["images"])
    odd = np.arange(len(f)) % 2 == 1
    assert reid_metrics(f[odd], data["ids"][odd], f[~odd], data["ids"][~odd])["rank1"] > 0.5  # chance 1/6


def test_triplet_and_metrics_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(f, y, margin=0.1) == 0  # positives far closer than negatives
    assert batch_hard_triplet(f, torch.tensor([0, 1, 0, 1]), margin=0.1) > 0.5
    q, g = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.1], [0.9, 0.0]])
    out = reid_metrics(q, [0, 1], g, [1, 0, 0])
    assert out["rank1"] == 1.0 and out["mAP"] == 1.0
    assert reid_metrics(q, [1, 0], g, [1, 0, 0])["rank1"] == 0.0


def test_bad_input_is_a_clear_error(people):
    x, ids = people["images"], people["ids"]
    with pytest.raises(AnytaskError, match="identity labels"):
        RLQReID(tad=False, cap=False).fit(x, ids[:-1])
    with pytest.raises(AnytaskError, match="at least 2 images"):
        RLQReID(tad=False, cap=False).fit(x[:7], ids[:7])
    with pytest.raises(AnytaskError, match="pose="):
        RLQReID(tad=False).fit(x, ids)
    with pytest.raises(AnytaskError, match="external="):
        RLQReID(cap=False).fit(x, ids)
    with pytest.raises(AnytaskError, match="same size"):
        RLQReID(cap=False).fit(x, ids, external=np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(AnytaskError, match="not fitted"):
        RLQReID().transform(x)
