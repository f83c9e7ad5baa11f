"""The contrastive head (methods/finetune/contrastive.py) and the split encoder it tunes
(backbones/split.py), on a tiny 2-layer BERT."""

import numpy as np
import pytest
import torch

from anytask.backbones import get_backbone, state_hash
from anytask.backbones.split import SplitEncoder
from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.finetune.contrastive import ContrastiveHead, pair_loss, separation
from anytask.methods.heads import HEADS, create_head

TEXTS = ["great film, loved it", "wonderful and moving", "a joy to watch", "brilliant acting",
         "terrible and boring", "awful plot", "a waste of time", "dull, badly made"]
LABELS = ["positive"] * 4 + ["negative"] * 4


@pytest.fixture()
def tiny_bert(bert_folders):
    return f"hf:{bert_folders[0]}"


def test_registered_as_a_text_head_with_its_paper():
    entry = HEADS.entry("contrastive")
    assert entry.caps.input == "texts" and entry.caps.saveable and "2209.11055" in entry.reference


@pytest.mark.parametrize("n_top", [1, 2])
def test_split_encoder_reproduces_the_backbone_and_its_copy_starts_equal(tiny_bert, n_top):
    backbone = get_backbone(tiny_bert)
    split = SplitEncoder(backbone, n_top, 64)
    lower = split.lower(TEXTS)
    assert [len(s) for s in lower] == [len(ids) for ids in backbone.tokenizer(TEXTS)["input_ids"]]
    with torch.no_grad():
        frozen, copy = split.pooled(lower, split.frozen_top), split.pooled(lower)
    assert torch.allclose(frozen, backbone.embed(TEXTS), atol=1e-5)
    assert torch.allclose(copy, frozen, atol=1e-6)
    own = {id(p) for p in backbone.parameters()}
    assert not any(id(p) in own for p in split.top.parameters())  # the copy shares no tensor with the backbone


def test_split_encoder_refuses_a_backbone_without_layers_and_a_bad_cut(tiny_bert):
    with pytest.raises(AnytaskError, match="BERT-style"):
        SplitEncoder(get_backbone("tiny"), 1, 64)
    with pytest.raises(AnytaskError, match="1..2"):
        SplitEncoder(get_backbone(tiny_bert), 3, 64)


def test_pair_loss_is_zero_when_classes_are_orthogonal_and_positive_otherwise():
    y = torch.tensor([0, 0, 1, 1])
    e = torch.tensor([[1.0, 0], [2.0, 0], [0, 1.0], [0, 3.0]])
    assert float(pair_loss(e, y)) == pytest.approx(0.0, abs=1e-7)
    assert separation(e, y) == pytest.approx(1.0)
    mixed = torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0], [0, 1.0]])  # every same-class pair orthogonal
    assert float(pair_loss(mixed, y)) == pytest.approx(1.0 + 0.5, abs=1e-6)  # pos: (0-1)^2; neg: mean of 1,0,0,1
    assert separation(mixed, y) < 0


def test_fit_tunes_a_copy_never_the_backbone_and_round_trips(tiny_bert, tmp_path):
    backbone = get_backbone(tiny_bert)
    before = state_hash(backbone)
    head = create_head("contrastive", backbone=tiny_bert, max_steps=4, check_every=2, batch_size=4, lr=1e-3,
                       margin=9.0).fit(TEXTS, LABELS)
    assert state_hash(backbone) == before
    assert head.n_steps_ == 4 and head.tuned_ and head.stopped_ == "max_steps" and len(head.history_) == 2
    tuned = head._split_.top_state()
    original = {k: v for k, v in SplitEncoder(backbone, 2, 64).top_state().items()}
    assert any(not torch.equal(tuned[k], original[k]) for k in tuned)
    proba = head.predict_proba(TEXTS)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(1), 1) and head.classes_.tolist() == ["negative", "positive"]
    assert head.transform(TEXTS).shape == (8, 2 * backbone.config.dim)  # tuned | frozen (keep_frozen)
    loaded = io.load(io.save(head, tmp_path / "ct"))
    assert np.allclose(loaded.predict_proba(TEXTS), proba, atol=1e-5)
    assert loaded.predict(TEXTS).tolist() == head.predict(TEXTS).tolist()


def test_loading_with_another_backbone_behind_the_name_is_refused(tiny_bert, bert_folders, tmp_path):
    head = ContrastiveHead(backbone=tiny_bert, max_steps=1, batch_size=4).fit(TEXTS, LABELS)
    folder = io.save(head, tmp_path / "ct")
    import json
    cfg = json.loads((folder / "config.json").read_text())
    cfg["params"]["backbone"] = f"hf:{bert_folders[1]}"  # a perturbed copy: another identity
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AnytaskError):
        io.load(folder)


def test_stops_early_once_the_support_set_is_separated(tiny_bert):
    head = ContrastiveHead(backbone=tiny_bert, max_steps=50, check_every=3, batch_size=4, margin=-2.0).fit(TEXTS, LABELS)
    assert head.stopped_ == "separated" and len(head.history_) == 1 and head.n_steps_ == 3


def test_singleton_classes_take_part_and_all_singletons_fall_back_to_the_frozen_encoder(tiny_bert):
    y = ["a", "a", "a", "b", "b", "b", "b", "c"]  # class c has one example: it has no same-class pair
    head = ContrastiveHead(backbone=tiny_bert, max_steps=2, batch_size=8).fit(TEXTS, y)
    assert head.tuned_ and head.predict_proba(TEXTS).shape == (8, 3)
    with pytest.warns(UserWarning, match="no same-class pair"):
        lone = ContrastiveHead(backbone=tiny_bert, max_steps=2).fit(TEXTS[:3], ["a", "b", "c"])
    assert not lone.tuned_ and lone.n_steps_ == 0
    frozen = get_backbone(tiny_bert).embed(TEXTS[:3]).numpy()
    assert np.allclose(lone.transform(TEXTS[:3]), np.hstack([frozen, frozen]), atol=1e-5)


@pytest.mark.parametrize("params, match", [({"lr": 0}, "lr"), ({"max_steps": 0}, "max_steps"),
                                           ({"batch_size": 1}, "batch_size"), ({"check_every": 0}, "check_every"), ({"n_top": 5}, "n_top"),
                                           ({"max_seconds": -1}, "max_seconds"), ({"margin": float("nan")}, "margin")])
def test_bad_parameters_are_clear_errors(tiny_bert, params, match):
    with pytest.raises(AnytaskError, match=match):
        ContrastiveHead(backbone=tiny_bert, **params).fit(TEXTS, LABELS)


def test_bad_inputs_are_clear_errors(tiny_bert):
    head = ContrastiveHead(backbone=tiny_bert, max_steps=1)
    with pytest.raises(AnytaskError, match="raw texts"):
        head.fit(np.zeros((8, 32), dtype=np.float32), LABELS)
    with pytest.raises(AnytaskError, match="one class"):
        head.fit(TEXTS, ["x"] * 8)
    with pytest.raises(AnytaskError, match="one label per text"):
        head.fit(TEXTS, LABELS[:3])


def test_anytask_bench_runs_it_beside_the_baseline(tiny_bert, tmp_path):
    import json

    from anytask.apps.cli import main

    out = tmp_path / "r.json"
    assert main(["bench", "--backbone", tiny_bert, "--tasks", "synthetic:topics", "--heads", "contrastive",
                 "--shots", "2", "--seeds", "1", "--max-test", "12", "--no-progress", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert {r["head"] for r in rows} == {"linear_probe", "contrastive"}
    assert all(0 <= r["accuracy"] <= 1 and "ece" in r for r in rows)


def test_class_batches_always_hold_same_class_pairs():
    from anytask.methods.finetune.contrastive import _class_batches

    y = np.repeat(np.arange(40), 3)  # 40 classes of 3: a random batch of 16 would rarely pair two of a class
    batches = _class_batches(y, 16, np.random.default_rng(0))
    for _ in range(20):
        idx = next(batches)
        counts = np.bincount(y[idx])
        assert len(idx) == 16 and len(set(idx.tolist())) == 16 and (counts[counts > 0] == 2).all()


def test_keep_frozen_puts_the_frozen_embedding_beside_the_tuned_one(tiny_bert, tmp_path):
    head = ContrastiveHead(backbone=tiny_bert, max_steps=2, batch_size=4, sampling="classes",
                           keep_frozen=True).fit(TEXTS, LABELS)
    Z = head.transform(TEXTS)
    dim = get_backbone(tiny_bert).config.dim
    assert Z.shape == (8, 2 * dim)
    assert np.allclose(Z[:, dim:], get_backbone(tiny_bert).embed(TEXTS).numpy(), atol=1e-5)
    loaded = io.load(io.save(head, tmp_path / "ct"))
    assert np.allclose(loaded.predict_proba(TEXTS), head.predict_proba(TEXTS), atol=1e-5)
    with pytest.raises(AnytaskError, match="sampling"):
        ContrastiveHead(backbone=tiny_bert, sampling="pairs").fit(TEXTS, LABELS)
