"""The layer-drop student: the teacher's layers kept at full width (extract_layers), chosen by held-out cosine
without labels, aligned to the teacher's embeddings, written as an hf: folder; bad input."""

from __future__ import annotations

import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.methods.distill import DISTILLERS

TEXTS = [f"text number {i} about {w}" for i in range(40) for w in ("football", "films")]


def test_kept_layers_compute_what_the_teacher_computes_with_those_layers(bert_folders):
    from transformers import BertModel

    from anytask.backbones.superlm import SubNet, SuperLM

    superlm = SuperLM(bert_folders[0])
    teacher = create_backbone(f"hf:{bert_folders[0]}")
    inputs, _ = teacher.tokenize(TEXTS[:3])
    with torch.no_grad():
        full = superlm.extract_layers([0, 1])(**inputs).last_hidden_state
        torch.testing.assert_close(full, teacher.forward_tokens(inputs), atol=1e-5, rtol=1e-5)
        bottom = superlm.extract_layers([0])(**inputs).last_hidden_state
        torch.testing.assert_close(bottom, superlm(inputs, SubNet(1, superlm.n_heads, superlm.ffn_max)), atol=1e-5,
                                   rtol=1e-5)
        # the top layer alone: the teacher's embeddings, then its layer 1 (not layer 0)
        top = superlm.extract_layers([1])
        ref = BertModel.from_pretrained(bert_folders[0]).eval()
        torch.testing.assert_close(top.encoder.layer[0].output.dense.weight, ref.encoder.layer[1].output.dense.weight)
        one, _ = teacher.tokenize(TEXTS[:1])  # one text: no padding, so the layer needs no mask
        want = ref.encoder.layer[1](ref.embeddings(input_ids=one["input_ids"]))
        want = want[0] if isinstance(want, tuple) else want
        torch.testing.assert_close(top(**one).last_hidden_state, want, atol=1e-5, rtol=1e-5)
    for bad in ([], [1, 0], [0, 0], [2], [-1]):
        with pytest.raises(AnytaskError, match="increasing, distinct"):
            superlm.extract_layers(bad)


@pytest.fixture
def deep_teacher(bert_folders, tmp_path):
    """The tiny random BERT barely changes its input (every layer is close to the identity); with its layers'
    feed-forward outputs scaled up, each layer matters and dropping one costs something."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "deep"
    shutil.copytree(bert_folders[0], folder)
    sd = load_file(str(folder / "model.safetensors"))
    g = torch.Generator().manual_seed(0)
    for k in list(sd):
        if k.endswith("output.dense.weight") and "attention" not in k:
            sd[k] = torch.randn(sd[k].shape, generator=g)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_layers_are_chosen_by_held_out_cosine_and_alignment_moves_the_student_closer(deep_teacher, tmp_path):
    name = f"hf:{deep_teacher}"
    before = state_hash(create_backbone(name))
    plain = DISTILLERS.get("layer_drop")(teacher=name, layers=1, steps=0, held_out=16, progress=False).fit(TEXTS)
    assert [c["keep"] for c in plain.candidates_] and len(plain.candidates_) == 2  # [0] and [1]
    cosines = [c["held_out_cosine"] for c in plain.candidates_]
    assert cosines == sorted(cosines, reverse=True) and plain.keep_ == plain.candidates_[0]["keep"]
    assert plain.held_out_cosine_ == pytest.approx(cosines[0], abs=1e-4)  # no training: the candidate itself
    trained = DISTILLERS.get("layer_drop")(teacher=name, layers=1, steps=40, batch_size=8, lr=1e-3, held_out=16,
                                           progress=False).fit(TEXTS)
    assert trained.keep_ == plain.keep_ and trained.held_out_cosine_ > plain.held_out_cosine_
    folder = trained.save_student(tmp_path / "student")
    student = create_backbone(f"hf:{folder}")
    assert student.model.config.num_hidden_layers == 1 and student.embed(TEXTS[:2]).shape == (2, 32)
    assert state_hash(create_backbone(name)) == before
    fixed = DISTILLERS.get("layer_drop")(teacher=name, keep=[1], steps=0, progress=False).fit(TEXTS)
    assert fixed.keep_ == [1] and fixed.candidates_ == [] and not hasattr(fixed, "held_out_cosine_")


def test_bad_layer_drop_requests_are_clear_errors(bert_folders, tmp_path):
    name = f"hf:{bert_folders[0]}"
    with pytest.raises(AnytaskError, match="keep 1..2"):
        DISTILLERS.get("layer_drop")(teacher=name, layers=3, steps=0, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="too few"):
        DISTILLERS.get("layer_drop")(teacher=name, layers=1, steps=0, batch_size=64, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="not a local model folder"):
        DISTILLERS.get("layer_drop")(teacher="hf:/nowhere", steps=0, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="not fitted"):
        DISTILLERS.get("layer_drop")().save_student(tmp_path / "x")


def test_anytask_distill_method_layer_drop_writes_a_student(bert_folders, tmp_path, capsys):
    import json

    from anytask.apps.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    out = tmp_path / "student"
    assert main(["distill", "--method", "layer_drop", "--teacher", f"hf:{bert_folders[0]}", "--layers", "1",
                 "--corpus", str(corpus), "--align-steps", "2", "--batch-size", "4", "--held-out", "8",
                 "--out", str(out), "-q"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["backbone"] == f"hf:{out}" and report["keep"] in ([0], [1]) and len(report["candidates"]) == 2
    assert create_backbone(report["backbone"]).embed(["hello"]).shape == (1, 32)


def test_a_named_student_is_looked_up_where_its_command_writes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ANYTASK_HOME", str(tmp_path))
    with pytest.raises(AnytaskError, match="anytask distill --student minilm-l3"):
        create_backbone("minilm-l3")
    from anytask.apps.cli import main

    assert main(["distill", "--student", "minilm-xl", "-q"]) == 2
    assert main(["distill", "--method", "layer_drop", "-q"]) == 2  # no corpus, no out, no student


@pytest.mark.slow  # slices the real MiniLM and scores its 20 three-layer choices (~15 s)
def test_anytask_distill_student_makes_the_named_backbone(tmp_path, monkeypatch, capsys):
    import json

    from anytask.apps.cli import main

    monkeypatch.setenv("ANYTASK_HOME", str(tmp_path))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    assert main(["distill", "--student", "minilm-l3", "--corpus", str(corpus), "--align-steps", "1",
                 "--batch-size", "4", "--held-out", "8", "-q"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(report["keep"]) == 3 and report["student"].startswith(str(tmp_path))
    backbone = create_backbone("minilm-l3")
    assert backbone.model.config.num_hidden_layers == 3 and backbone.embed(["hello"]).shape == (1, 384)


def test_a_student_is_trained_further_from_its_folder(deep_teacher, tmp_path):
    from safetensors.torch import load_file

    name = f"hf:{deep_teacher}"
    first = DISTILLERS.get("layer_drop")(teacher=name, layers=1, steps=10, batch_size=8, lr=1e-3, held_out=16,
                                         progress=False).fit(TEXTS)
    folder = first.save_student(tmp_path / "first")
    saved = load_file(str(folder / "model.safetensors"))
    untrained = DISTILLERS.get("layer_drop")(teacher=name, init=folder, steps=0, held_out=16, progress=False)
    untrained.fit(TEXTS)  # no steps: the saved student exactly, scored on the first run's held-out texts
    assert untrained.held_out_cosine_ == pytest.approx(first.held_out_cosine_, abs=1e-5)
    assert untrained.keep_ == [0] and untrained.candidates_ == []
    more = DISTILLERS.get("layer_drop")(teacher=name, init=folder, steps=40, batch_size=8, lr=1e-3, held_out=16,
                                        progress=False).fit(TEXTS)
    assert more.held_out_cosine_ > first.held_out_cosine_
    assert "trained further" in (more.save_student(tmp_path / "second") / "README.md").read_text()
    assert all(torch.equal(t, saved[k]) for k, t in load_file(str(folder / "model.safetensors")).items())

    with pytest.raises(AnytaskError, match="not a student folder"):
        DISTILLERS.get("layer_drop")(teacher=name, init=tmp_path, steps=0, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="not both"):
        DISTILLERS.get("layer_drop")(teacher=name, init=folder, keep=[0], steps=0, progress=False).fit(TEXTS)
