"""Devices: auto / cpu / cuda[:N] / mps resolve or fail clearly; batches shrink on out-of-memory; the
gpu-marked test runs where a CUDA GPU exists (pytest -m gpu)."""

import numpy as np
import pytest
import torch

from anytask.backbones import create_backbone, get_backbone, get_embedder, resolve_device
from anytask.core.errors import AnytaskError


def test_auto_is_the_cpu_without_an_accelerator_and_follows_anytask_device(monkeypatch):
    monkeypatch.delenv("ANYTASK_DEVICE", raising=False)
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto") == resolve_device(None) == expected
    monkeypatch.setenv("ANYTASK_DEVICE", "cpu")
    assert resolve_device("auto") == "cpu"
    assert resolve_device("CPU") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no CUDA GPU is visible")
def test_an_absent_device_is_an_error_that_says_what_is_there():
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(AnytaskError, match="no CUDA GPU is visible.*use cpu"):
            resolve_device(spec)
    with pytest.raises(AnytaskError, match="unknown device 'gpu'; use auto, cpu, cuda"):
        resolve_device("gpu")
    with pytest.raises(AnytaskError, match="bad device"):
        resolve_device("cuda:x")
    from anytask import TextClassifier

    with pytest.raises(AnytaskError, match="no CUDA GPU"):
        TextClassifier(backbone="tiny", device="cuda").fit(["a", "b"], ["x", "y"])


def test_backbones_are_shared_per_device(monkeypatch):
    monkeypatch.setenv("ANYTASK_DEVICE", "cpu")
    assert get_backbone("tiny", device="cpu") is get_backbone("tiny") is get_backbone("tiny", device="auto")
    monkeypatch.delenv("ANYTASK_DEVICE")
    assert get_embedder("tiny").backbone.device.type == resolve_device("auto").split(":")[0]


def test_an_out_of_memory_batch_is_split_and_retried(tiny, recwarn):
    backbone = create_backbone("tiny")
    forward = backbone.forward_tokens
    sizes = []

    def small_memory(inputs):
        sizes.append(inputs["input_ids"].shape[0])
        if inputs["input_ids"].shape[0] > 4:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(inputs)

    backbone.forward_tokens = small_memory
    texts = [f"text number {i} " * (i % 5 + 1) for i in range(19)]
    out = backbone.embed(texts, batch_size=16)
    np.testing.assert_allclose(out.numpy(), tiny.embed(texts).numpy(), atol=1e-5)
    assert sizes[:3] == [16, 8, 4] and max(sizes[3:]) <= 4
    assert any("out of memory" in str(w.message) for w in recwarn.list)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_embeddings_and_a_classifier_on_the_gpu_equal_the_cpu(tmp_path):
    from anytask import TextClassifier
    from anytask.core import io
    from anytask.data import make_topic_task

    train, test = make_topic_task(10)
    texts = list(test.X)
    cpu = create_backbone("minilm").embed(texts).numpy()
    gpu_backbone = create_backbone("minilm", device="cuda")
    assert gpu_backbone.device.type == "cuda" and gpu_backbone.identity == get_backbone("minilm").identity
    np.testing.assert_allclose(gpu_backbone.embed(texts, batch_size=128).numpy(), cpu, atol=1e-4)
    for head in ("linear_probe", "contrastive", "prompt_tuning"):
        clf = TextClassifier(head=head, device="cuda", use_cache=False, head_params={"max_steps": 2}
                             if head == "contrastive" else {"epochs": 1} if head == "prompt_tuning" else None)
        clf.fit(list(train.X), train.y)
        assert clf.predict(texts).shape == (len(texts),)
    loaded = io.load(io.save(clf, tmp_path / "m"))
    assert loaded.predict(texts[:2]).shape == (2,)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("linearized", [False, True])
def test_fine_tuning_on_the_gpu_writes_a_cpu_checkpoint(bert_folders, tmp_path, linearized):
    from anytask.methods.finetune.finetune import finetune, predict

    texts, labels = ["good film", "bad film", "great plot", "awful plot"] * 4, [1, 0, 1, 0] * 4
    info = finetune(bert_folders[0], texts, labels, ["negative", "positive"], tmp_path / "ft", steps=3,
                    linearized=linearized, device="cuda", progress=False)
    assert len(info["history"]) == 3
    assert predict(tmp_path / "ft", texts[:4], ["negative", "positive"]).shape == (4,)
