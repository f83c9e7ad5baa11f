"""Fine-tuning a backbone copy, standard and linearised (tangent space), on the tiny BERT."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anytask.core.errors import AnytaskError
from anytask.methods.finetune.finetune import Linearized, finetune, load_encoder, predict

TEXTS = ["great film, loved it", "wonderful and moving", "a joy to watch", "brilliant acting",
         "terrible and boring", "awful plot", "a waste of time", "dull, badly made"]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]
NAMES = ["negative", "positive"]


@pytest.mark.parametrize("linearized", [False, True])
def test_finetune_learns_and_leaves_the_source_untouched(bert_folders, tmp_path, linearized):
    base = bert_folders[0]
    before = (base / "model.safetensors").read_bytes()
    info = finetune(base, TEXTS, LABELS, NAMES, tmp_path / "ft", linearized=linearized, steps=30, lr=3e-3,
                    batch_size=8, progress=False)
    assert (base / "model.safetensors").read_bytes() == before
    losses = [h["loss"] for h in info["history"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    saved = json.loads((tmp_path / "ft" / "finetune.json").read_text())
    assert saved["linearized"] is linearized and saved["steps"] == 30
    card = (tmp_path / "ft" / "README.md").read_text()  # its own model card, not the source's
    assert card.startswith("# Fine-tuned by anytask") and ("linearised" in card) is linearized
    tuned, orig = load_file(str(tmp_path / "ft" / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert set(tuned) == set(orig)  # every key kept: anytask merge and hf: loading work on it
    assert torch.equal(tuned["embeddings.word_embeddings.weight"], orig["embeddings.word_embeddings.weight"])
    assert any(not torch.equal(tuned[k], orig[k]) for k in orig if "encoder.layer" in k)
    pred = predict(tmp_path / "ft", TEXTS, NAMES, linearized=linearized)
    assert np.mean(pred == np.array(LABELS)) >= 0.75


def test_linearized_model_is_the_first_order_taylor_expansion(bert_folders):
    encoder, tok = load_encoder(bert_folders[0])
    encoder.eval()
    lin = Linearized(encoder)
    enc = tok(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(lin(**enc), encoder(**enc).last_hidden_state)  # delta = 0: the base model
        g = torch.Generator().manual_seed(0)
        for d in lin.delta:
            d.copy_(1e-3 * torch.randn(d.shape, generator=g))
        eps = 1e-2  # f(theta_0 + eps delta) - f(theta_0) ~ eps J delta for small eps
        params = dict(encoder.named_parameters())
        shifted = {n: params[n] + eps * d for n, d in zip(lin.names, lin.delta)}
        f0 = encoder(**enc).last_hidden_state
        f_eps = torch.func.functional_call(encoder, {**params, **shifted}, kwargs=enc).last_hidden_state
        lin_eps = f0 + eps * (lin(**enc) - f0)
    assert (f_eps - lin_eps).abs().max() < 1e-2 * (f_eps - f0).abs().max()


def test_bad_labels_are_clear_errors(bert_folders, tmp_path):
    with pytest.raises(AnytaskError, match="labels must index label_names"):
        finetune(bert_folders[0], TEXTS, [0, 1, 2, 0, 1, 0, 1, 0], NAMES, tmp_path / "x", steps=1, progress=False)
    with pytest.raises(AnytaskError, match="one label per text"):
        finetune(bert_folders[0], TEXTS, LABELS[:3], NAMES, tmp_path / "x", steps=1, progress=False)
    assert not (tmp_path / "x").exists()
