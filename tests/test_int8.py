"""The int8 fast paths (backbones/quantized.py): close to the float model, own cache identity, cached export,
base never changed, clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError

TEXTS = ["a short text", "another, longer text about football and the weather in spring", "the film was dull"]


@pytest.fixture
def bert(bert_folders):
    return f"hf:{bert_folders[0]}"


@pytest.mark.parametrize("engine", ["int8", "int8-torch"])
def test_int8_is_close_to_the_float_model_and_keys_its_own_cache(bert, engine):
    base = create_backbone(bert)
    q = create_backbone(f"{engine}:{bert}")
    before = state_hash(q.base)
    X, Y = base.embed(TEXTS), q.embed(TEXTS)
    assert Y.shape == X.shape and torch.isfinite(Y).all()
    assert torch.allclose(Y.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert torch.nn.functional.cosine_similarity(X, Y).min() > 0.95
    assert not torch.equal(X, Y)  # it really is a different computation
    assert q.config.name == f"{engine}:{bert}" and q.identity != base.identity
    assert state_hash(q.base) == before and not any(p.requires_grad for p in q.parameters())


@pytest.mark.slow  # exports and quantises the real MiniLM (~10 s); the tiny-BERT tests above cover the logic
def test_int8_minilm_matches_the_float_model_closely(minilm):
    from anytask.backbones.quantized import QuantizedBackbone

    X = minilm.embed(TEXTS)
    before = state_hash(minilm)
    Y = QuantizedBackbone(minilm, engine="onnx").embed(TEXTS)
    assert torch.nn.functional.cosine_similarity(X, Y).min() > 0.97
    assert state_hash(minilm) == before


def test_the_onnx_export_is_cached_and_a_damaged_file_is_rebuilt(bert, tmp_path, monkeypatch):
    from anytask.backbones.quantized import QuantizedBackbone

    base = create_backbone(bert)
    first = QuantizedBackbone(base, cache_dir=tmp_path)
    files = list((tmp_path / "int8").glob("*.onnx"))
    assert len(files) == 1
    monkeypatch.setattr(QuantizedBackbone, "_export_int8", lambda self: (_ for _ in ()).throw(AssertionError))
    again = QuantizedBackbone(base, cache_dir=tmp_path)  # no second export
    assert torch.allclose(first.embed(TEXTS), again.embed(TEXTS), atol=1e-6)
    monkeypatch.undo()
    files[0].write_bytes(b"not an onnx model")
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = QuantizedBackbone(base, cache_dir=tmp_path)
    assert torch.allclose(rebuilt.embed(TEXTS), first.embed(TEXTS), atol=1e-6)


def test_bad_int8_requests_are_clear_errors(bert, tiny_lm_folder, monkeypatch):
    with pytest.raises(AnytaskError, match="needs an encoder backbone"):
        create_backbone("int8:")
    with pytest.raises(AnytaskError, match="not a transformers encoder"):
        create_backbone("int8-torch:tiny")
    with pytest.raises(AnytaskError, match="causal"):
        create_backbone(f"int8-torch:hf-causal:{tiny_lm_folder}")
    q = create_backbone(f"int8-torch:{bert}")
    with pytest.warns(UserWarning, match="CPU only"):
        assert q.to("meta") is q and q.device.type == "cpu"
    with pytest.raises(AnytaskError, match="unknown int8 engine"):
        from anytask.backbones.quantized import QuantizedBackbone

        QuantizedBackbone(q.base, engine="fp4")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(AnytaskError, match=r"anytask\[fast\]"):
        create_backbone(f"int8:{bert}")
