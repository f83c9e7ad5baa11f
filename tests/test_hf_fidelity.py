"""hf:<folder> equals SentenceTransformer(folder).encode to 1e-5 for every pooling mode, Dense layers, Normalize and
prompts; a module anytask cannot compute exactly is an error. The folders are built here from a tiny random BERT."""

import json
import shutil

import numpy as np
import pytest
import torch

from anytask.backbones import create_backbone
from anytask.core.errors import AnytaskError

st = pytest.importorskip("sentence_transformers", reason="the comparison needs sentence-transformers (.[st])")
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer  # noqa: E402

TEXTS = ["a short one", "a much longer sentence about the football match and the late goal",
         "rates rose", "query text with several words in it", "x"]


def _folder(tmp_path, bert, pooling, *, dense=(), normalize=False, prompts=None, default_prompt=None,
            include_prompt=True):
    torch.manual_seed(0)
    modules = [Transformer(str(bert), max_seq_length=48)]
    modules.append(Pooling(32, pooling_mode=pooling, include_prompt=include_prompt))
    width = 32 * (1 if isinstance(pooling, str) else len(pooling))
    for out, activation in dense:
        modules.append(Dense(width, out, activation_function=activation))
        width = out
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=default_prompt, device="cpu")
    name = "-".join([pooling if isinstance(pooling, str) else "+".join(pooling), str(len(dense)), str(normalize),
                     str(default_prompt), str(include_prompt)])
    path = tmp_path / name
    model.save(str(path))
    return path, model


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken",
                                     ("cls", "mean", "max")])
def test_every_pooling_mode_equals_sentence_transformers(tmp_path, bert_folders, pooling):
    path, model = _folder(tmp_path, bert_folders[0], pooling)
    ours = create_backbone(f"hf:{path}")
    expected = model.encode(TEXTS, convert_to_numpy=True, batch_size=2)
    assert ours.config.dim == expected.shape[1]
    np.testing.assert_allclose(ours.embed(TEXTS, batch_size=3).numpy(), expected, atol=1e-5)
    reloaded = SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours.embed(TEXTS).numpy(), reloaded, atol=1e-5)


@pytest.mark.parametrize("activation", [torch.nn.Tanh(), torch.nn.Identity(), torch.nn.GELU()])
def test_dense_layers_and_normalize(tmp_path, bert_folders, activation):
    path, _ = _folder(tmp_path, bert_folders[0], "mean", dense=[(24, activation), (16, torch.nn.Tanh())],
                      normalize=True)
    expected = SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_numpy=True)
    ours = create_backbone(f"hf:{path}")
    assert ours.config.dim == 16 and ours.config.normalize
    np.testing.assert_allclose(ours.embed(TEXTS).numpy(), expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(expected, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("include_prompt", [True, False])
def test_the_default_prompt_and_a_named_one(tmp_path, bert_folders, include_prompt):
    prompts = {"query": "query: ", "passage": "passage: "}
    path, _ = _folder(tmp_path, bert_folders[0], "mean", normalize=True, prompts=prompts, default_prompt="query",
                      include_prompt=include_prompt)
    model = SentenceTransformer(str(path), device="cpu")
    ours = create_backbone(f"hf:{path}")
    np.testing.assert_allclose(ours.embed(TEXTS).numpy(), model.encode(TEXTS, convert_to_numpy=True), atol=1e-5)
    passage = create_backbone(f"hf:{path}", prompt_name="passage")
    np.testing.assert_allclose(passage.embed(TEXTS).numpy(),
                               model.encode(TEXTS, prompt_name="passage", convert_to_numpy=True), atol=1e-5)
    assert passage.identity != ours.identity  # the prompt is part of what the cache keys on
    with pytest.raises(AnytaskError, match="no prompt 'nope'"):
        create_backbone(f"hf:{path}", prompt_name="nope")


def test_an_unsupported_module_is_an_error_not_skipped(tmp_path, bert_folders):
    path, _ = _folder(tmp_path, bert_folders[0], "mean", normalize=True)
    modules = json.loads((path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_LayerNorm",
                       "type": "sentence_transformers.models.LayerNorm"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(AnytaskError, match="LayerNorm.*Transformer, Pooling, then Dense layers and Normalize"):
        create_backbone(f"hf:{path}")


def test_minilm_keeps_its_identity_and_equals_sentence_transformers(minilm):
    from anytask.backbones.hf import minilm_path

    assert minilm.config.pooling == "mean" and minilm.config.normalize and minilm.config.prompt == ""
    assert "|prompt=" not in minilm.identity
    expected = SentenceTransformer(str(minilm_path()), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(minilm.embed(TEXTS).numpy(), expected, atol=1e-5)


def test_a_hub_name_is_read_from_the_local_cache_and_downloads_only_when_allowed(tmp_path, bert_folders, monkeypatch):
    """The real code path (huggingface_hub's snapshot_download) against a cache laid out as the hub lays it out."""
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-st"
    snap = repo / "snapshots" / ("0" * 40)
    path, _ = _folder(tmp_path, bert_folders[0], "cls", normalize=True)
    shutil.copytree(path, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    ours = create_backbone("hf:someone/tiny-st")
    np.testing.assert_allclose(ours.embed(TEXTS).numpy(), create_backbone(f"hf:{path}").embed(TEXTS).numpy(),
                               atol=1e-6)
    with pytest.raises(AnytaskError, match="HF_HUB_OFFLINE=0"):
        create_backbone("hf:someone/not-cached")
