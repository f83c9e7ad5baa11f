"""Shared fixtures. Every test uses a private embedding cache; tiny models are built in-test."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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
    from anytask import io
    from anytask.concepts import ConceptModel, SAEConfig, build_vocabulary, name_concepts, top_activating, train_sae
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
