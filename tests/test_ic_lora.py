"""IC-LoRA (card 20): only adapter parameters train, the base infiller stays bit-identical, merging the adapters
gives the same outputs, saved folders load without the base, and a LoRA target that does not exist is a clear
error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data import images as im
from anytask.methods.generative import GridInfiller, ICLoRA, canvases
from anytask.methods.generative.visualcloze import infill_with

pytest.importorskip("peft", reason="IC-LoRA needs PEFT (the lm or bench extra)")


@pytest.fixture(scope="module")
def base():
    return GridInfiller(dim=32, depth=2, heads=2, steps=5, batch_size=8).fit(["invert", "flip_h"])


def _canvases(task, n, seed):
    grids, truth = im.task_grids(task, n, 0, seed=seed)
    return [[[g[-1][0], truth[i]]] for i, g in enumerate(grids)]


def _hash(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_lora_trains_only_adapters_and_leaves_the_base_bit_identical(base):
    before = _hash(base.net_)
    tuned = ICLoRA(base, steps=10).fit(_canvases("transpose", 20, 0))
    assert all(torch.equal(before[k], v) for k, v in base.net_.state_dict().items())
    # rank 4 on q, k, v, o of 2 blocks of width 32: 2 * 4 * (4 * 32 + 4 * 32)
    assert tuned.trainable_ == 2 * 4 * (4 * 32 + 4 * 32)
    grids, _ = im.task_grids("transpose", 8, 0, seed=9)
    assert not np.array_equal(tuned.infill(grids), base.infill(grids))
    assert ICLoRA(base, mode="none").fit(_canvases("transpose", 4, 0)).trainable_ == 0


def test_merging_the_lora_gives_identical_outputs_and_saving_keeps_them(base, tmp_path):
    tuned = ICLoRA(base, steps=10, seed=1).fit(_canvases("erode", 20, 1))
    grids, _ = im.task_grids("erode", 16, 0, seed=2)
    canvas, cells, _ = canvases(grids, 16)
    np.testing.assert_allclose(infill_with(tuned.merged(), canvas, cells, None, 16), tuned.infill(grids), atol=1e-5)
    io.save(tuned, tmp_path / "lora")
    back = io.load(tmp_path / "lora")
    np.testing.assert_allclose(back.infill(grids), tuned.infill(grids), atol=1e-5)
    assert back.get_params()["base"] is None and back.trainable_ == tuned.trainable_


def test_full_fine_tuning_trains_every_weight_and_is_seeded(base):
    canv = _canvases("shift_left", 20, 3)
    a, b = ICLoRA(base, mode="full", steps=5).fit(canv), ICLoRA(base, mode="full", steps=5).fit(canv)
    grids, _ = im.task_grids("shift_left", 4, 0, seed=4)
    np.testing.assert_array_equal(a.infill(grids), b.infill(grids))
    assert a.trainable_ == base.n_parameters_


def test_bad_input_is_a_clear_error(base):
    canv = _canvases("transpose", 4, 0)
    with pytest.raises(AnytaskError, match=r"\['qkv'\] are not linear layers"):
        ICLoRA(base, targets=("qkv",)).fit(canv)
    with pytest.raises(AnytaskError, match="trained GridInfiller"):
        ICLoRA(None).fit(canv)
    with pytest.raises(AnytaskError, match="must be complete"):
        ICLoRA(base).fit([[[canv[0][0][0], None]]])
    with pytest.raises(AnytaskError, match="mode"):
        ICLoRA(base, mode="half").fit(canv)
