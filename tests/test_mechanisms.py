"""Mechanisms: the head hook API on causal LMs and circuit reuse (card 29), on the tiny random llama."""

import numpy as np
import pytest
import torch

from anytask.backbones import get_backbone, state_hash
from anytask.backbones.patching import HeadHooks
from anytask.core.errors import AnytaskError
from anytask.methods.mechanisms import PromptSet, make_prompts
from anytask.methods.mechanisms.circuits import (answer_tokens, circuit, circuit_reuse, head_effects, overlap,
                                                 path_effects, steer)


def toy(n: int = 8, shift: int = 0) -> PromptSet:
    """Single-byte answers, so the byte-level tiny-causal tokenizer scores them as one token each."""
    words = ["cat", "dog", "fox", "owl", "bee", "elk", "ant", "yak"]
    clean = tuple(f"the {words[(i + shift) % 8]} saw the {words[(i + 3) % 8]} and" for i in range(n))
    corrupt = tuple(f"the {words[(i + shift + 1) % 8]} saw the {words[(i + 3) % 8]} and" for i in range(n))
    return PromptSet("toy", clean, corrupt, ("A",) * n, ("B",) * n, candidates=("A", "B", "C"))


@pytest.fixture(scope="module")
def lm():
    return get_backbone("tiny-causal")


def test_reading_patching_with_itself_and_scaling_by_one_change_nothing(lm):
    hooks = HeadHooks(lm)
    batch = hooks.batch(list(toy().clean))
    tokens = torch.tensor([[lm.encode("A")[0], lm.encode("B")[0]]] * len(batch))
    base = hooks.logits(batch, tokens)
    z = hooks.outputs(batch)
    assert z.shape == (hooks.n_layers, len(batch), hooks.n_heads, hooks.d_head)
    same = {(layer, head): z[layer, :, head] for layer in range(hooks.n_layers) for head in range(hooks.n_heads)}
    torch.testing.assert_close(hooks.logits(batch, tokens, patch=same), base)
    torch.testing.assert_close(hooks.logits(batch, tokens, scale={(1, 2): 1.0}), base)
    assert not torch.allclose(hooks.logits(batch, tokens, scale={(1, h): 0.0 for h in range(hooks.n_heads)}), base)
    with pytest.raises(AnytaskError, match=r"head \(2, 0\) is out of range"):
        hooks.logits(batch, tokens, scale={(2, 0): 0.0})


def test_a_cached_prefix_gives_the_full_forward_pass(lm):
    hooks = HeadHooks(lm)
    prompts = [p for p in toy().clean if len(p) == len(toy().clean[0])]
    full = hooks.batch(prompts)
    cached = hooks.cache_prefix(full)
    tokens = torch.tensor([[lm.encode("A")[0], lm.encode("B")[0]]] * len(full))
    z = hooks.outputs(hooks.batch(list(toy().corrupt[:len(prompts)])))
    patch = {(0, 1): z[0, :, 1]}
    for kw in ({}, {"patch": patch}, {"scale": {(1, 3): 2.0}}):
        torch.testing.assert_close(hooks.logits(cached, tokens, **kw), hooks.logits(full, tokens, **kw),
                                   atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hooks.logits(cached, tokens), hooks.logits(full, tokens), atol=1e-5, rtol=1e-5)
    with pytest.raises(AnytaskError, match="one length"):
        hooks.cache_prefix(hooks.batch(["short", "a longer prompt"]))


def test_head_effects_circuits_and_overlap(lm):
    before = state_hash(lm)
    hooks = HeadHooks(lm)
    result = head_effects(hooks, toy(12))
    assert result["effects"].shape == (2, 4) and np.isfinite(result["effects"]).all()
    assert result["n"] == 12 and result["skipped"] == 0 and result["ld_clean"] != result["ld_corrupt"]
    top = circuit(result["effects"], 0.25)
    assert len(top) == 2 and all(0 <= layer < 2 and 0 <= head < 4 for layer, head in top)
    assert overlap(top, top)["overlap"] == 1.0 and overlap(top, top)["jaccard"] == 1.0
    assert overlap({(0, 0)}, {(0, 0), (1, 1)}) == {"overlap": 0.5, "jaccard": 0.5, "shared": [(0, 0)]}
    steered = steer(hooks, toy(12), sorted(top), seed=0)
    assert 0 <= steered["before"] <= 1 and steered["alpha"] in steered["fit_accuracy"]
    assert state_hash(lm) == before


def test_query_hooks_read_and_write_queries_and_path_patching_measures_senders(lm):
    before = state_hash(lm)
    hooks = HeadHooks(lm)
    prompts = [p for p in toy().clean if len(p) == len(toy().clean[0])]
    clean = hooks.cache_prefix(hooks.batch(prompts))
    corrupt = hooks.batch([c for c, p in zip(toy().corrupt, toy().clean) if len(p) == len(prompts[0])])
    tokens = torch.tensor([[lm.encode("A")[0], lm.encode("B")[0]]] * len(prompts))
    base = hooks.logits(clean, tokens)
    q = hooks.queries(clean)
    assert q.shape == (hooks.n_layers, len(prompts), hooks.n_heads, hooks.d_head)
    same = {(1, h): q[1, :, h] for h in range(hooks.n_heads)}
    torch.testing.assert_close(hooks.logits(clean, tokens, q_patch=same), base)  # writing back changes nothing
    q_bad = hooks.queries(corrupt)
    moved = hooks.logits(clean, tokens, q_patch={(1, h): q_bad[1, :, h] for h in range(hooks.n_heads)})
    assert not torch.allclose(moved, base)
    # a sender patched from the corrupted run changes the receivers' queries, and only from its own layer on
    z_bad = hooks.outputs(corrupt)
    q_sent = hooks.queries(clean, patch={(0, 2): z_bad[0, :, 2]})
    torch.testing.assert_close(q_sent[0], q[0])
    assert not torch.allclose(q_sent[1], q[1])

    result = path_effects(hooks, toy(12), [(1, 0), (1, 3)])
    assert result["effects"].shape == (2, 4) and np.isnan(result["effects"][1]).all()
    assert np.isfinite(result["effects"][0]).all() and result["receivers"] == [(1, 0), (1, 3)]
    assert circuit(result["effects"], 0.5) <= {(0, h) for h in range(4)} and len(circuit(result["effects"], 0.5)) == 2
    with pytest.raises(AnytaskError, match="layer >= 1"):
        path_effects(hooks, toy(4), [(0, 1)])
    with pytest.raises(AnytaskError, match="out of range"):
        path_effects(hooks, toy(4), [(5, 1)])
    assert state_hash(lm) == before


def test_patches_at_every_position_and_unedited_reads(lm):
    hooks = HeadHooks(lm)
    full = hooks.batch(list(toy().clean))
    tokens = torch.tensor([[lm.encode("A")[0], lm.encode("B")[0]]] * len(full))
    base = hooks.logits(full, tokens)
    z_all = hooks.outputs(full, every_position=True)
    T = full.ids.shape[1]
    assert z_all.shape == (hooks.n_layers, len(full), T, hooks.n_heads, hooks.d_head)
    torch.testing.assert_close(z_all[:, :, -1], hooks.outputs(full))
    same = {(layer, h): z_all[layer, :, :, h] for layer in range(hooks.n_layers) for h in range(hooks.n_heads)}
    torch.testing.assert_close(hooks.logits(full, tokens, patch=same), base)
    # a sender corrupted at the earlier positions only: the next layer's final-token queries stay clean, but its
    # heads' outputs move (they attend over keys and values the sender changed)
    bad = hooks.outputs(hooks.batch(list(toy().corrupt)), every_position=True)
    sender = bad[0, :, :, 2].clone()
    sender[:, -1] = z_all[0, :, -1, 2]
    torch.testing.assert_close(hooks.queries(full, patch={(0, 2): sender})[1], hooks.queries(full)[1])
    assert not torch.allclose(hooks.outputs(full, patch={(0, 2): sender})[1], z_all[1, :, -1])
    # unedited reads what a head wrote before a patch replaced it
    zero = {(1, 0): torch.zeros(len(full), hooks.d_head)}
    assert hooks.outputs(full, patch=zero)[1, :, 0].abs().max() == 0
    torch.testing.assert_close(hooks.outputs(full, patch=zero, unedited=True)[1, :, 0], z_all[1, :, -1, 0])
    with pytest.raises(AnytaskError, match="every position"):
        hooks.logits(hooks.cache_prefix(full), tokens, patch={(0, 2): sender})


def test_path_patching_into_keys_and_values(lm):
    before = state_hash(lm)
    hooks = HeadHooks(lm)
    prompts = toy(12)
    receivers = [(1, h) for h in range(hooks.n_heads)]
    result = path_effects(hooks, prompts, receivers, into="keys_values")
    assert result["into"] == "keys_values" and result["unaligned"] == 0
    assert np.isnan(result["effects"][1]).all() and np.isfinite(result["effects"][0]).all()
    # with every head of the last layer a receiver (nothing between sender and receivers), the path's effect is
    # the run in which the sender alone is corrupted at the earlier positions
    full, corrupt = hooks.batch(list(prompts.clean)), hooks.batch(list(prompts.corrupt))
    tokens = torch.tensor([[lm.encode("A")[0], lm.encode("B")[0]]] * len(full))

    def ld(batch, **kw):
        z = hooks.logits(batch, tokens, **kw)
        return float((z[:, 0] - z[:, 1]).mean())

    clean_ld = ld(full)
    gap = ld(corrupt) - clean_ld
    z_clean, z_bad = hooks.outputs(full, every_position=True), hooks.outputs(corrupt, every_position=True)
    for head in range(hooks.n_heads):
        sender = z_bad[0, :, :, head].clone()
        sender[:, -1] = z_clean[0, :, -1, head]
        expected = (ld(full, patch={(0, head): sender}) - clean_ld) / gap
        assert result["effects"][0, head] == pytest.approx(expected, rel=1e-3, abs=1e-3)  # cached vs full runs
    # prompts whose corrupted version has another length are skipped and counted
    odd = PromptSet("odd", prompts.clean, (prompts.corrupt[0] + " too",) + prompts.corrupt[1:], prompts.answer,
                    prompts.alternative)
    assert path_effects(hooks, odd, receivers, into="keys_values")["unaligned"] == 1
    with pytest.raises(AnytaskError, match="into='values'"):
        path_effects(hooks, prompts, receivers, into="values")
    assert state_hash(lm) == before


def test_multi_token_answers_are_skipped_and_counted_never_scored_by_their_first_token(lm):
    hooks = HeadHooks(lm)
    mixed = PromptSet("t", ("a b", "c d"), ("a c", "c b"), ("A", " Mary"), ("B", " John"))
    kept, tokens, skipped = answer_tokens(hooks, mixed)
    assert len(kept) == 1 and skipped == 1 and tokens.shape == (1, 2)
    with pytest.raises(AnytaskError, match="no prompt has single-token answers"):
        answer_tokens(hooks, PromptSet("t", ("a",), ("b",), (" Mary",), (" John",)))


@pytest.mark.parametrize("name", ["ioi", "colored_objects"])
def test_prompt_sets_are_seeded_minimal_pairs(name):
    a, b = make_prompts(name, 40, seed=3), make_prompts(name, 40, seed=3)
    assert a == b and make_prompts(name, 40, seed=4) != a
    for clean, corrupt, answer, alternative in zip(a.clean, a.corrupt, a.answer, a.alternative):
        assert sum(x != y for x, y in zip(clean.split(), corrupt.split())) == 1  # one word differs
        assert answer != alternative and answer.strip().lower() in clean.lower()
    with pytest.raises(AnytaskError, match="at least one prompt"):
        make_prompts(name, 0)


def test_circuit_reuse_end_to_end(lm):
    result = circuit_reuse(lm, toy(8), toy(8, shift=2), fractions=(0.25, 0.5))
    assert set(result["overlaps"]) == {"0.25", "0.5"}
    assert result["overlaps"]["0.5"]["size"] == 4 and 0 <= result["overlaps"]["0.5"]["overlap"] <= 1
    assert len(result["steer_random"]["heads"]) == len(result["steer_shared"]["heads"])
