"""aTLAS: per-block coefficients over task vectors, learned on a few examples (tiny BERT)."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anytask.core.errors import AnytaskError
from anytask.methods.merging import merge_state_dicts, task_vector
from anytask.methods.merging.atlas import ATLAS, Objective, fit_atlas
from anytask.methods.finetune.finetune import load_encoder

TEXTS = ["great film, loved it", "wonderful and moving", "terrible and boring", "awful plot"]
LABELS = [1, 1, 0, 0]
NAMES = ["negative", "positive"]


@pytest.fixture(scope="module")
def vectors(bert_folders):
    base = load_file(str(bert_folders[0] / "model.safetensors"))
    return [task_vector(base, load_file(str(f / "model.safetensors"))) for f in bert_folders[1:]]


def test_equal_coefficients_are_task_arithmetic(bert_folders, vectors):
    encoder, _ = load_encoder(bert_folders[0])
    model = ATLAS(encoder, vectors, init=0.4)
    base = load_file(str(bert_folders[0] / "model.safetensors"))
    tuned = [load_file(str(f / "model.safetensors")) for f in bert_folders[1:]]
    expected = merge_state_dicts(base, tuned, method="task_arithmetic", scale=0.4)
    merged = model.merged_state()
    for k in merged:
        torch.testing.assert_close(merged[k], expected[k])
    assert len(ATLAS(encoder, vectors, blocks="layer").block_names) < len(model.block_names)


def test_fit_lowers_the_loss_and_learns_anisotropic_coefficients(bert_folders, vectors):
    model, history = fit_atlas(bert_folders[0], vectors, [Objective(TEXTS, LABELS, NAMES)], steps=25, lr=0.5,
                               batch_size=4, blocks="layer")
    assert np.mean([h["loss"] for h in history[-5:]]) < np.mean([h["loss"] for h in history[:5]])
    coef = model.coef.detach()
    assert coef.shape == (2, len(model.block_names)) and coef.std() > 0  # not one uniform lambda any more


def test_forgetting_objective_is_capped_at_chance(bert_folders, vectors):
    _, history = fit_atlas(bert_folders[0], vectors, [Objective(TEXTS, LABELS, NAMES, weight=-1.0)], steps=5,
                           lr=0.5, batch_size=4)
    assert all(h["loss"] >= -np.log(2) - 1e-5 for h in history)


def test_bad_inputs(bert_folders, vectors):
    encoder, _ = load_encoder(bert_folders[0])
    with pytest.raises(AnytaskError, match="at least one task vector"):
        ATLAS(encoder, [])
    with pytest.raises(AnytaskError, match="not in the encoder"):
        ATLAS(encoder, [{"nope.weight": torch.zeros(2)}])
    with pytest.raises(AnytaskError, match="unknown block partition"):
        ATLAS(encoder, vectors, blocks="rows")
    with pytest.raises(AnytaskError, match="at least one objective"):
        fit_atlas(bert_folders[0], vectors, [])
