"""Deep prompt tuning and PromptSRC (heads/prompt_tuning.py) on a tiny 2-layer BERT."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import create_head
from anytask.methods.prompting.prompt_tuning import PromptedEncoder, agreement_kl, gpa_weights

TEXTS = ["great film, loved it", "wonderful and moving", "a joy to watch", "brilliant acting",
         "terrible and boring", "awful plot", "a waste of time", "dull, badly made"]
LABELS = ["positive"] * 4 + ["negative"] * 4


@pytest.fixture()
def tiny_bert(bert_folders):
    return f"hf:{bert_folders[0]}"


def test_frozen_path_is_the_backbones_embedding_and_zero_length_prompts_change_nothing(tiny_bert):
    from anytask.backbones import get_backbone

    backbone = get_backbone(tiny_bert)
    enc = PromptedEncoder(backbone, 64)
    tokens = enc.tokenize(TEXTS)
    with torch.no_grad():
        frozen = F.normalize(enc(tokens, None), dim=-1)
        empty = F.normalize(enc(tokens, torch.zeros(2, 0, backbone.config.dim)), dim=-1)
    assert torch.allclose(frozen, backbone.embed(TEXTS), atol=1e-5)
    assert torch.equal(frozen, empty)
    assert float(F.l1_loss(empty, frozen)) == 0.0  # the agreement terms vanish when prompts reproduce the frozen path


def test_deep_prompts_replace_the_previous_layers_slots(tiny_bert):
    from anytask.backbones import get_backbone

    backbone = get_backbone(tiny_bert)
    enc = PromptedEncoder(backbone, 64)
    prompts = torch.randn(2, 3, backbone.config.dim)
    seen = {}
    handle = enc.layers[1].attention.register_forward_pre_hook(
        lambda m, args, kwargs: seen.update(h=(args[0] if args else kwargs["hidden_states"]).clone()),
        with_kwargs=True)
    try:
        with torch.no_grad():
            enc(enc.tokenize(TEXTS[:2]), prompts)
    finally:
        handle.remove()
    assert torch.equal(seen["h"][:, 1:4], prompts[1].expand(2, -1, -1))
    assert not enc.layers[1]._forward_pre_hooks  # the swap hook lives only during the call
    with torch.no_grad():  # outside a prompted call the backbone behaves as before
        assert torch.allclose(F.normalize(enc(enc.tokenize(TEXTS[:2]), None), dim=-1), backbone.embed(TEXTS[:2]),
                              atol=1e-5)


def test_kv_only_prompts_enter_every_layer_as_keys_and_values_without_shifting_the_text(tiny_bert):
    from anytask.backbones import get_backbone

    backbone = get_backbone(tiny_bert)
    enc = PromptedEncoder(backbone, 64)
    tokens = enc.tokenize(TEXTS[:2])
    prompts = torch.randn(2, 3, backbone.config.dim)
    seen = []
    handle = enc.layers[0].attention.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append((args[0] if args else kwargs["hidden_states"]).clone()), with_kwargs=True)
    try:
        with torch.no_grad():
            frozen = enc(tokens, None)
            kv = enc(tokens, prompts, kv_only=True)
            shifted = enc(tokens, prompts)
            empty = enc(tokens, torch.zeros(2, 0, backbone.config.dim), kv_only=True)
    finally:
        handle.remove()
    plain, kv_in, token_in = seen[0], seen[1], seen[2]
    assert torch.equal(kv_in[:, 1:4], prompts[0].expand(2, -1, -1))  # layer 0 reads the raw prompts
    # the text enters layer 0 exactly as without prompts (same position ids); token prompts shift it
    assert torch.allclose(kv_in[:, [0, *range(4, kv_in.shape[1])]], plain, atol=1e-6)
    assert not torch.allclose(token_in[:, [0, *range(4, token_in.shape[1])]], plain, atol=1e-3)
    assert kv.shape == frozen.shape and not torch.allclose(kv, frozen, atol=1e-4)
    assert not torch.allclose(kv, shifted, atol=1e-4)
    assert torch.equal(empty, frozen)
    assert not enc.layers[0]._forward_pre_hooks


def test_gpa_weights_sum_to_one_and_count_every_epoch():
    w = gpa_weights(20, 15, 1)
    assert w.sum() == pytest.approx(1.0) and np.argmax(w) == 14 and (w > 0).all()
    with pytest.raises(AnytaskError, match="zero weight"):
        gpa_weights(5, 1e4, 1e-3)


def test_kl_term_is_divided_by_the_number_of_logits():
    z0, z = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]), torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]])
    p, logq = torch.softmax(z0, -1), torch.log_softmax(z, -1)
    hand = float((p * (p.log() - logq)).sum() / z.numel())
    assert float(agreement_kl(z0, z)) == pytest.approx(hand, rel=1e-6)


@pytest.mark.parametrize("self_regulating", [False, True])
def test_prompt_tuning_learns_and_never_touches_the_backbone(tiny_bert, self_regulating, tmp_path):
    from anytask.backbones import get_backbone

    backbone = get_backbone(tiny_bert)
    before = backbone.weights_hash
    head = create_head("prompt_tuning", backbone=tiny_bert, length=2, depth=2, epochs=12, batch_size=8, lr=5e-2,
                       self_regulating=self_regulating, gpa_mean=10, gpa_std=2).fit(TEXTS, LABELS)
    assert backbone.weights_hash == before
    assert head.input_prompts_.shape == (2, 2, backbone.config.dim)
    assert head.history_[-1]["ce"] < head.history_[0]["ce"]
    if self_regulating:
        assert {"l1", "kl"} <= set(head.history_[-1])
    proba = head.predict_proba(TEXTS)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(1), 1)
    io.save(head, tmp_path / "pt")
    again = io.load(tmp_path / "pt")
    assert np.allclose(again.decision_function(TEXTS), head.decision_function(TEXTS))
    novel = head.with_labels(["sports", "politics", "music"])  # classes never trained on are scored by name
    assert set(novel.predict(TEXTS)) <= {"sports", "politics", "music"}


def test_kv_prompt_tuning_learns_saves_and_rejects_unknown_modes(tiny_bert, tmp_path):
    from anytask.backbones import get_backbone

    backbone = get_backbone(tiny_bert)
    before = backbone.weights_hash
    head = create_head("prompt_tuning", backbone=tiny_bert, length=3, depth=2, epochs=12, batch_size=8, lr=5e-2,
                       prompt_mode="kv").fit(TEXTS, LABELS)
    assert backbone.weights_hash == before
    assert head.history_[-1]["ce"] < head.history_[0]["ce"]
    io.save(head, tmp_path / "kv")
    again = io.load(tmp_path / "kv")
    assert again.prompt_mode == "kv"
    assert np.allclose(again.decision_function(TEXTS), head.decision_function(TEXTS))
    as_tokens = io.load(tmp_path / "kv").set_params(prompt_mode="tokens")  # the mode matters at prediction time
    assert not np.allclose(as_tokens.decision_function(TEXTS), head.decision_function(TEXTS))
    with pytest.raises(AnytaskError, match="prompt_mode"):
        create_head("prompt_tuning", backbone=tiny_bert, prompt_mode="prefix").fit(TEXTS, LABELS)


def test_max_steps_cuts_training_into_epoch_segments(tiny_bert):
    head = create_head("prompt_tuning", backbone=tiny_bert, length=2, depth=2, epochs=3, batch_size=2,
                       max_steps=5, self_regulating=True, gpa_mean=2, gpa_std=1).fit(TEXTS, LABELS)
    assert head.n_steps_ == 5  # 3 epochs of 4 steps would be 12
    assert [h["step"] for h in head.history_] == [2, 3, 5]  # one aggregation snapshot per segment
    full = create_head("prompt_tuning", backbone=tiny_bert, length=2, depth=2, epochs=2, batch_size=4).fit(TEXTS, LABELS)
    assert full.n_steps_ == 4 and [h["step"] for h in full.history_] == [2, 4]


def test_bad_input_gets_clear_errors(tiny_bert):
    make = lambda **kw: create_head("prompt_tuning", backbone=tiny_bert, epochs=1, **{"depth": 2, **kw})  # noqa: E731
    with pytest.raises(AnytaskError, match="has no name"):
        make().fit(TEXTS, [1, 1, 1, 1, 0, 0, 0, 0])
    make(descriptions={0: "negative", 1: "positive"}).fit(TEXTS, [1, 1, 1, 1, 0, 0, 0, 0])  # names given: fine
    with pytest.raises(AnytaskError, match="prompt depth must be 1..2"):
        make(depth=3).fit(TEXTS, LABELS)
    with pytest.raises(AnytaskError, match="only one class"):
        make().fit(TEXTS, ["positive"] * 8)
    with pytest.raises(AnytaskError, match="exceeds the backbone's 128 positions"):
        make(max_length=127, length=4).fit(TEXTS, LABELS)
    with pytest.raises(AnytaskError, match="max_steps=0"):
        make(max_steps=0).fit(TEXTS, LABELS)
    with pytest.raises(AnytaskError, match="raw texts, not embeddings"):
        make().fit(np.zeros((8, 4), np.float32), LABELS)
    with pytest.raises(AnytaskError, match="one label per text"):
        make().fit(TEXTS, LABELS[:3])
    with pytest.raises(AnytaskError, match="BERT-style backbone"):
        create_head("prompt_tuning", backbone="tiny", epochs=1).fit(TEXTS, LABELS)


def test_text_classifier_and_bench_runner_hand_raw_texts_to_the_head(tiny_bert, tmp_path):
    from anytask.experiments.runner import run_bench
    from anytask.experiments.tasks import prepare_tasks
    from anytask.backbones import get_embedder
    from anytask.apps.classifier import TextClassifier

    params = {"length": 2, "depth": 2, "epochs": 2}
    clf = TextClassifier(backbone=tiny_bert, head="prompt_tuning", head_params=params, use_cache=False)
    clf.fit(TEXTS, LABELS)
    assert clf.predict_proba(TEXTS).shape == (8, 2)
    again = io.load(io.save(clf, tmp_path / "clf"))
    np.testing.assert_allclose(again.predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)

    tasks, _ = prepare_tasks(["synthetic:topics"], shots=(2,), seeds=(0,), max_test=12,
                             embedder=get_embedder(tiny_bert, use_cache=False), progress=False)
    result = run_bench(tasks, ["prompt_tuning"], [2], [0], backbone=tiny_bert, progress=False)
    rows = [r for r in result["results"] if r["head"] == "prompt_tuning"]
    assert len(rows) == 1 and rows[0]["n_test"] == 12 and 0 <= rows[0]["accuracy"] <= 1
