"""Image tasks, grids and the VisualCloze grid infiller (card 31): exact packing, the mask over the query target
only, outputs outside the mask never read, the held-out splits kept out of training, saving, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data import images as im
from anytask.methods.generative import GridInfiller, canvases
from anytask.methods.generative.model import PatchInfiller

TINY = dict(dim=32, depth=1, heads=2, steps=6, batch_size=8)


@pytest.fixture(scope="module")
def tiny():
    return GridInfiller(**TINY).fit(["invert", "flip_h"])


def test_pack_unpack_round_trips_exactly_and_masks_only_the_missing_panel():
    grids, truth = im.task_grids("invert+flip_h", 3, 2, seed=1)
    canvas, mask = im.pack(grids[0])
    assert canvas.shape == (48, 32) and mask.sum() == 16 * 16 and mask[32:, 16:].all()
    panels = im.unpack(canvas, 3, 2)
    for r in range(2):
        for c in range(2):
            np.testing.assert_array_equal(panels[r][c], grids[0][r][c])
    np.testing.assert_array_equal(panels[2][0], grids[0][2][0])
    np.testing.assert_array_equal(truth[0], im.apply("invert+flip_h", grids[0][2][0]))


def test_tasks_compose_left_to_right_and_inverses_undo_them():
    x = im.shapes(5, 16, seed=2)
    np.testing.assert_array_equal(im.apply("flip_h+invert", x), 1 - x[:, :, ::-1])
    for t in ("rot90", "shift_right+flip_v", "transpose"):
        np.testing.assert_allclose(im.apply(im.inverse(t), im.apply(t, x)), x)
    with pytest.raises(AnytaskError, match="lose information"):
        im.inverse("edges")
    with pytest.raises(AnytaskError, match="unknown image operation"):
        im.apply("rotate", x)


def test_no_training_task_computes_a_held_out_function():
    held = im.HELDOUT_TASKS + im.HELDOUT_COMPOSITIONS + im.REVERSE_TASKS
    probe = im.shapes(32, 16, seed=99)  # another probe than the one the split was made with
    assert not set(held) & set(im.TRAIN_TASKS)
    assert "flip_h+rot90" not in im.TRAIN_TASKS and "flip_v+invert" not in im.TRAIN_TASKS  # transpose, commuted
    assert not [(t, h) for t in im.TRAIN_TASKS for h in held if im.same_function(t, h, probe)]


def test_bad_grids_get_clear_errors():
    a = np.zeros((16, 16))
    with pytest.raises(AnytaskError, match="same"):
        im.pack([[a, np.zeros((8, 8))], [a, None]])
    with pytest.raises(AnytaskError, match="no cell"):
        im.pack([[a, a], [a, a]])
    with pytest.raises(AnytaskError, match="same number"):
        im.pack([[a, a], [a]])
    with pytest.raises(AnytaskError, match="8x8 pixels but this model works on 16x16"):
        canvases([[[np.zeros((8, 8)), None]]], 16)


def test_infiller_output_outside_the_mask_is_not_used(tiny):
    grids, _ = im.task_grids("invert", 4, 1, seed=3)
    a = tiny.infill(grids)
    for g in grids:  # the context rows and the query condition change the answer; the masked pixels do not exist
        g[0][1] = g[0][1].copy()
    canvas, cells, _ = canvases(grids, 16)
    noisy = canvas.clone()
    noisy[cells[:, :, None, :, None].expand(4, 2, 16, 2, 16).reshape(canvas.shape)] = 0.7
    with torch.no_grad():
        p1, p2 = tiny.net_(canvas, cells), tiny.net_(noisy, cells)
    torch.testing.assert_close(p1, p2)  # whatever sits under the mask is replaced by the mask token
    assert a.shape == (4, 16, 16) and a.min() >= 0 and a.max() <= 1


def test_infiller_is_seeded_saves_and_rejects_another_image_size(tiny, tmp_path):
    grids, _ = im.task_grids("flip_h", 3, 2, seed=4)
    again = GridInfiller(**TINY).fit(["invert", "flip_h"])
    np.testing.assert_array_equal(again.infill(grids), tiny.infill(grids))
    io.save(tiny, tmp_path / "m")
    back = io.load(tmp_path / "m")
    np.testing.assert_array_equal(back.infill(grids), tiny.infill(grids))
    big, _ = im.task_grids("flip_h", 2, 1, size=24, seed=0)
    with pytest.raises(AnytaskError, match="24x24 pixels"):
        back.infill(big)
    with pytest.raises(AnytaskError, match="without text"):
        back.infill(grids, "flip the image")
    with pytest.raises(AnytaskError, match="larger than this model"):
        back.infill(im.task_grids("flip_h", 1, 3)[0])


def test_patch_infiller_rejects_a_partial_panel_mask_shape():
    net = PatchInfiller(dim=16, depth=1, heads=2)
    with pytest.raises(AnytaskError, match="cell mask"):
        net(torch.zeros(1, 32, 32), torch.zeros(1, 1, 2, dtype=torch.bool))


def test_text_prompts_through_a_frozen_encoder(tmp_path):
    pytest.importorskip("transformers")
    m = GridInfiller(**TINY, text_backbone="tiny").fit(["invert", "flip_h"])
    grids, _ = im.task_grids("invert", 2, 0)
    with_text, without = m.infill(grids, im.prompt("invert")), m.infill(grids)
    assert m.text_dim_ > 0 and not np.array_equal(with_text, without)
    with pytest.raises(AnytaskError, match="one non-empty text per grid"):
        m.infill(grids, ["a"])


def test_cli_trains_and_renders_a_png(tmp_path, capsys):
    from anytask.apps.cli import main

    assert main(["infill", "train", "--steps", "3", "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == len(im.TRAIN_TASKS)
    png = tmp_path / "g.png"
    assert main(["infill", "render", "--model", str(tmp_path / "m"), "--task", "transpose", "-n", "2",
                 "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json.loads(capsys.readouterr().out)["grids"] == 2
    assert main(["infill", "render", "--model", str(tmp_path / "m"), "--task", "spin", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "unknown image operation" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert main(["infill", "render", "--model", str(tmp_path / "m"), "--task", "invert", "--rows", "5", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "0..2 example rows" in capsys.readouterr().err


def test_png_writer_is_a_valid_grey_png(tmp_path):
    zlib = pytest.importorskip("zlib")
    img = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    data = im.write_png(tmp_path / "a.png", img, scale=1).read_bytes()
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(3, 5)[:, 1:]
    np.testing.assert_array_equal(raw, (img * 255 + 0.5).astype(np.uint8))
