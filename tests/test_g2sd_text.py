"""G2SD's generic distillation, text variant: the mask, the loss falling on masked text, the student as an hf:
folder, the teacher untouched, masked-only supervision, bad input."""

from __future__ import annotations

import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.methods.distill import DISTILLERS

TEXTS = [f"text number {i} about {w} and more words" for i in range(40) for w in ("football", "films")]


def test_mask_takes_a_share_of_real_tokens_and_never_the_markers():
    from anytask.backbones.superlm import mask_tokens

    inputs = {"attention_mask": torch.tensor([[1] * 12, [1] * 6 + [0] * 6, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])}
    m = mask_tokens(inputs, 0.3, torch.Generator().manual_seed(0))
    assert m[:, 0].sum() == 0 and not m[0, 11] and not m[1, 5]  # [CLS] and each text's [SEP] are kept
    assert m[0].sum() == 3 and m[1].sum() == 2 and m[2].sum() == 0  # ceil(30 % of 10 and of 4); none to mask
    assert not (m & ~inputs["attention_mask"].bool()).any()  # never padding
    again = mask_tokens(inputs, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(m, again)


def test_generic_distillation_lowers_the_loss_and_writes_a_student(bert_folders, tmp_path):
    teacher = create_backbone(f"hf:{bert_folders[0]}")
    before = state_hash(teacher)
    g = DISTILLERS.get("g2sd_text")(teacher=f"hf:{bert_folders[0]}", keep=[0], steps=30, batch_size=8, lr=1e-3,
                                    progress=False).fit(TEXTS)
    assert len(g.loss_curve_) == 30 and sum(g.loss_curve_[-5:]) < sum(g.loss_curve_[:5])
    folder = g.save_student(tmp_path / "student")
    student = create_backbone(f"hf:{folder}")
    assert student.embed(TEXTS[:3]).shape == teacher.embed(TEXTS[:3]).shape
    assert "masked text" in (folder / "README.md").read_text()
    assert state_hash(create_backbone(f"hf:{bert_folders[0]}")) == before
    masked_only = DISTILLERS.get("g2sd_text")(teacher=f"hf:{bert_folders[0]}", keep=[0], steps=3, batch_size=8,
                                              supervise_all=False, progress=False).fit(TEXTS)
    assert masked_only.loss_curve_ != g.loss_curve_[:3]


def test_bad_input_is_a_clear_error(bert_folders):
    with pytest.raises(AnytaskError, match="mask_ratio"):
        DISTILLERS.get("g2sd_text")(teacher=f"hf:{bert_folders[0]}", mask_ratio=1.5, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="not fitted"):
        DISTILLERS.get("g2sd_text")().save_student("nowhere")


def test_anytask_distill_method_g2sd_text_masked_only_writes_a_student(bert_folders, tmp_path, capsys):
    import json

    from anytask.apps.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    out = tmp_path / "student"
    assert main(["distill", "--method", "g2sd_text", "--masked-only", "--teacher", f"hf:{bert_folders[0]}",
                 "--layers", "1", "--corpus", str(corpus), "--align-steps", "2", "--batch-size", "4",
                 "--held-out", "8", "--out", str(out), "-q"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["backbone"] == f"hf:{out}" and "masked tokens only" in (out / "README.md").read_text()
