import numpy as np
import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError


def test_tiny_is_deterministic_given_seed_and_differs_across_seeds():
    a, b, c = create_backbone("tiny"), create_backbone("tiny"), create_backbone("tiny:seed=1")
    texts = ["a small test", "another one, longer than the first"]
    torch.testing.assert_close(a.embed(texts), b.embed(texts))
    assert a.weights_hash == b.weights_hash != c.weights_hash
    assert a.identity != c.identity


def test_embed_is_unit_norm_and_batch_independent(tiny):
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(23)]
    full = tiny.embed(texts, batch_size=64)
    small = tiny.embed(texts, batch_size=4)
    assert full.shape == (23, 32)
    torch.testing.assert_close(full.norm(dim=1), torch.ones(23))
    torch.testing.assert_close(full, small, atol=1e-5, rtol=1e-5)


def test_embed_tokens_gives_states_and_mask(tiny):
    states, mask = tiny.embed_tokens(["one two three", "one"])
    assert states.shape[:2] == mask.shape and states.shape[2] == 32
    assert mask.sum(1).tolist() == [5, 3]  # [CLS] words [SEP]
    pooled = tiny.pool(states, mask)
    torch.testing.assert_close(pooled, tiny.embed(["one two three", "one"]), atol=1e-5, rtol=1e-5)


def test_backbone_is_frozen(tiny):
    assert all(not p.requires_grad for p in tiny.parameters())
    tiny.train()
    assert not tiny.training


def test_long_text_is_truncated_with_one_warning(tiny):
    tiny._warned_truncation = False
    long = "word " * 500
    with pytest.warns(UserWarning, match="truncated"):
        tiny.embed([long])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny.embed([long])  # warned once per backbone


def test_bad_texts_and_names_are_clear_errors(tiny):
    with pytest.raises(AnytaskError, match="single string"):
        tiny.embed("not a list")
    with pytest.raises(AnytaskError, match="item 1"):
        tiny.embed(["ok", 3])
    with pytest.raises(AnytaskError, match="minilm"):
        create_backbone("minilmm")
    with pytest.raises(AnytaskError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE=0"):
        create_backbone("hf:some-org/not-a-local-model")
    with pytest.raises(AnytaskError, match="does not exist"):
        create_backbone("hf:/no/such/folder")


@pytest.mark.minilm
def test_minilm_matches_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    from anytask.backbones.hf import minilm_path

    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    texts = ["The cat sat on the mat.", "Stocks fell sharply on Monday.", "hello " * 300, ""]
    ours = minilm.embed(texts).numpy()
    theirs = model.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert minilm.config.dim == 384 and minilm.config.max_length == 256


@pytest.mark.minilm
def test_hf_prefix_loads_a_local_folder(minilm):
    from anytask.backbones.hf import minilm_path

    other = create_backbone(f"hf:{minilm_path()}")
    assert other.weights_hash == minilm.weights_hash
    torch.testing.assert_close(other.embed(["same weights"]), minilm.embed(["same weights"]))


@pytest.mark.minilm
def test_minilm_weights_unchanged_by_embedding(minilm):
    before = state_hash(minilm)
    minilm.embed(["a", "b"])
    minilm.embed_tokens(["c"])
    assert state_hash(minilm) == before
