"""LSceneLLM's magnifier (card 24): with alpha = 0 the output is the base model's, the selection is the argmax
region when only it passes the threshold, the fine tokens add no output positions, saving keeps answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data.scenes import toy_scenes
from anytask.methods.generative import SceneReader
from anytask.methods.generative.lscenellm import N_TEXT, FlexLayer

SMALL = dict(width=32, heads=2, layers=2, start=1, steps=8, batch_size=16, pretrain=0.0)


@pytest.fixture(scope="module")
def scenes():
    return toy_scenes(200, regions=6, fine=3, colours=5, shapes=4, seed=0)


def test_toy_scenes_hide_the_answer_in_one_region(scenes):
    colours = scenes.fine[..., :5].argmax(-1)  # (N, R, F)
    for i in range(20):
        hits = np.argwhere(colours[i] == scenes.question[i])
        assert len(hits) == 1 and hits[0][0] == scenes.relevant[i]
        assert scenes.fine[i, hits[0][0], hits[0][1], 5:].argmax() == scenes.answer[i]
    np.testing.assert_allclose(scenes.coarse, scenes.fine.mean(axis=2), atol=1e-6)


def test_alpha_zero_gives_the_base_models_output(scenes):
    m = SceneReader(**SMALL).fit(scenes)
    q, c, f = m._tensors(scenes[:16])
    with torch.no_grad():
        off, _ = m.net_(q, c, f, alpha=0.0)
        base, _ = m.net_(q, c, f[:, :, :0], alpha=0.0)  # no fine tokens at all
    torch.testing.assert_close(off, base)


def test_selection_is_the_argmax_region_when_only_it_passes_the_threshold():
    torch.manual_seed(0)
    layer = FlexLayer(8, 1, magnify=True)
    with torch.no_grad():  # queries and keys so the first text token attends to coarse token 2 far above the others
        layer.q_proj.weight.copy_(torch.eye(8) * 4)
        layer.k_proj.weight.copy_(torch.eye(8) * 4)
        layer.q_proj.bias.zero_()
        layer.k_proj.bias.zero_()
    x = torch.zeros(1, N_TEXT + 4, 8)
    x[0, 0, 0] = x[0, N_TEXT + 2, 0] = 3.0
    x[0, 1, 1] = x[0, N_TEXT + 1, 1] = 3.0
    out, sel = layer(x, torch.randn(1, 4, 2, 8), torch.zeros(1, 4, 2, 8), 4, 200.0, 1.0)
    assert sel[0, 0].nonzero().flatten().tolist() == [2] and sel[0, 1].nonzero().flatten().tolist() == [1]
    assert out.shape == x.shape  # the fine tokens add keys and values, never output positions


def test_modes_report_tokens_attended_and_save(scenes, tmp_path):
    reports = {mode: SceneReader(mode=mode, **SMALL).fit(scenes).report(scenes) for mode in
               ("coarse", "all-fine", "magnifier")}
    assert reports["coarse"]["tokens_attended"] < reports["magnifier"]["tokens_attended"] \
        < reports["all-fine"]["tokens_attended"]
    assert 0 <= reports["magnifier"]["selection_precision"] <= 1
    m = SceneReader(**SMALL).fit(scenes)
    io.save(m, tmp_path / "r")
    np.testing.assert_array_equal(io.load(tmp_path / "r").predict(scenes), m.predict(scenes))
    with pytest.raises(AnytaskError, match="trained on 6 x 3"):
        m.predict(toy_scenes(4, regions=8, fine=3, colours=5, shapes=4))
    with pytest.raises(AnytaskError, match="mode"):
        SceneReader(mode="zoom").fit(scenes)


def test_text_scenes_ask_about_a_word_in_exactly_one_document():
    from anytask.data.scenes import text_scenes

    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    tokens = [list(rng.choice(vocab, size=5, replace=False)) for _ in range(30)]
    states = rng.normal(size=(30, 5, 8)).astype(np.float32)
    vectors = {w: rng.normal(size=6) for w in vocab[:30]}
    labels = rng.integers(0, 3, size=30)
    s = text_scenes(tokens, states, labels, vectors, 50, regions=4, seed=1)
    assert s.question.shape == (50, 6) and s.fine.shape == (50, 4, 5, 8) and s.n_shapes == 3
    words, table = list(vectors), np.stack(list(vectors.values()))
    for i in range(50):
        w = words[int(np.abs(table - s.question[i]).sum(axis=1).argmin())]
        owners = [r for r in range(4) if any(np.allclose(s.fine[i, r], states[d]) and w in tokens[d]
                                             for d in range(30))]
        assert owners == [s.relevant[i]]
    reader = SceneReader(**SMALL).fit(s)
    assert reader.predict(s).shape == (50,)
    with pytest.raises(AnytaskError, match="by id but this reader was trained on questions by vector"):
        reader.predict(toy_scenes(4, regions=4, fine=5, colours=5, shapes=3))
