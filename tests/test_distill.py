"""The distillation family: AutoDistil's SuperLM (slicing, the largest sub-network equals the teacher,
relations of any width), the sandwich rule, search, and students written as hf: folders; bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.methods.distill import DISTILLERS

SPACE = {"layers": (1, 2), "heads": (2, 4), "ffn_ratio": (1, 2)}  # the tiny test BERT: 2 layers, 4 heads of 8
TEXTS = [f"text number {i} about {w}" for i in range(40) for w in ("football", "films")]


def test_the_largest_sub_network_of_an_untrained_superlm_is_the_teacher(minilm):
    from anytask.backbones.hf import minilm_path
    from anytask.backbones.superlm import SubNet, SuperLM, teacher_relations

    superlm = SuperLM(minilm_path())
    inputs, _ = minilm.tokenize(["a short text", "another, somewhat longer one about football"])
    with torch.no_grad():
        want = minilm.forward_tokens(inputs)
        assert torch.allclose(superlm(inputs), want, atol=1e-4)
        rel = superlm.relations(inputs)
        assert torch.allclose(rel, teacher_relations(minilm.model, inputs, 12), atol=1e-4)
        small = superlm.relations(inputs, SubNet(2, 3, 192))  # width 96: still 12 relation heads
    T = inputs["input_ids"].shape[1]
    assert rel.shape == small.shape == (3, 2, 12, T, T)


def test_an_extracted_student_computes_what_its_slice_computes(bert_folders):
    from anytask.backbones.superlm import SubNet, SuperLM

    superlm = SuperLM(bert_folders[0], relation_heads=4)
    teacher = create_backbone(f"hf:{bert_folders[0]}")
    inputs, _ = teacher.tokenize(TEXTS[:3])
    shape = SubNet(1, 2, 16)
    with torch.no_grad():
        assert torch.allclose(superlm.extract(shape)(**inputs).last_hidden_state, superlm(inputs, shape), atol=1e-5)
    with pytest.raises(AnytaskError, match="outside the teacher"):
        superlm.check(SubNet(3, 4, 64))
    with pytest.raises(AnytaskError, match="relation heads"):
        SuperLM(bert_folders[0], relation_heads=3).check(SubNet(1, 2, 16))


def test_autodistil_trains_with_the_sandwich_rule_and_leaves_the_teacher(bert_folders, tmp_path):
    ad = DISTILLERS.get("autodistil")(teacher=f"hf:{bert_folders[0]}", subspace=SPACE, steps=4, batch_size=8,
                                      max_length=16, sandwich=3, progress=False)
    teacher = create_backbone(f"hf:{bert_folders[0]}")
    before = state_hash(teacher)
    ad.fit(TEXTS)
    assert len(ad.sampled_) == 4 and all(ad.largest_ in s and ad.smallest_ in s and len(s) == 3 for s in ad.sampled_)
    assert all(torch.isfinite(torch.tensor(ad.history_)))
    assert state_hash(create_backbone(f"hf:{bert_folders[0]}")) == before
    ranking = ad.search(TEXTS[:16])
    assert len(ranking) == 8 and ranking == sorted(ranking, key=lambda r: r["relation_loss"])
    assert ad.best_.as_dict() == {k: ranking[0][k] for k in ("layers", "heads", "ffn")}
    budget = ad.search(TEXTS[:16], max_flops=ad.flops(ad.smallest_))
    assert [(r["layers"], r["heads"], r["ffn"]) for r in budget] == [tuple(ad.smallest_.as_dict().values())]
    with pytest.raises(AnytaskError, match="budget"):
        ad.search(TEXTS[:16], max_flops=1)

    folder = ad.save_student(tmp_path / "student", align_steps=3, texts=TEXTS)
    student = create_backbone(f"hf:{folder}")
    X = student.embed(TEXTS[:4])
    assert X.shape == (4, teacher.config.dim) and torch.allclose(X.norm(dim=1), torch.ones(4), atol=1e-5)
    again = create_backbone(f"hf:{folder}")
    assert again.identity == student.identity and torch.allclose(again.embed(TEXTS[:4]), X, atol=1e-6)  # nothing random
    plain = create_backbone(f"hf:{ad.save_student(tmp_path / 'plain', shape=ad.smallest_)}")
    assert plain.config.dim == ad.smallest_.width(ad.superlm_.head_width)


def test_zero_steps_keep_the_superlm_untrained_every_net_a_slice_of_the_teacher(bert_folders):
    from anytask.backbones.superlm import SuperLM

    ad = DISTILLERS.get("autodistil")(teacher=f"hf:{bert_folders[0]}", subspace=SPACE, steps=0, batch_size=8,
                                      max_length=16, progress=False).fit(TEXTS)
    assert ad.history_ == [] and ad.sampled_ == []
    fresh = SuperLM(bert_folders[0], relation_heads=ad.superlm_.relation_heads)
    inputs = dict(create_backbone(f"hf:{bert_folders[0]}").tokenize(TEXTS[:3])[0])
    with torch.no_grad():
        for shape in (ad.smallest_, ad.largest_):
            assert torch.equal(ad.superlm_(inputs, shape), fresh(inputs, shape))
    assert len(ad.search(TEXTS[:16])) == 8


def test_bad_distillation_input_is_a_clear_error_and_a_failed_save_keeps_the_old_student(bert_folders, tmp_path,
                                                                                         monkeypatch):
    make = DISTILLERS.get("autodistil")
    with pytest.raises(AnytaskError, match="not a local model folder"):
        make(teacher="sentence-transformers/all-MiniLM-L6-v2", subspace=SPACE).fit(TEXTS)
    with pytest.raises(AnytaskError, match="unknown sub-space"):
        make(teacher=f"hf:{bert_folders[0]}", subspace="huge").fit(TEXTS)
    with pytest.raises(AnytaskError, match="outside the teacher"):
        make(teacher=f"hf:{bert_folders[0]}", subspace={**SPACE, "layers": (1, 5)}, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="not fitted"):
        make().search(TEXTS)
    for steps in (-1, 2.5, True):
        with pytest.raises(AnytaskError, match="whole number"):
            make(teacher=f"hf:{bert_folders[0]}", subspace=SPACE, steps=steps, batch_size=8).fit(TEXTS)
    ad = make(teacher=f"hf:{bert_folders[0]}", subspace=SPACE, steps=1, batch_size=8, progress=False).fit(TEXTS)
    with pytest.raises(AnytaskError, match="search"):
        ad.save_student(tmp_path / "s")
    folder = ad.save_student(tmp_path / "s", shape=ad.smallest_)
    good = {p.relative_to(folder): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}

    import anytask.core.io as io

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(io.shutil, "copyfile", boom)
    with pytest.raises(OSError):
        ad.save_student(tmp_path / "s", shape=ad.largest_)
    monkeypatch.undo()
    assert {p.relative_to(folder): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()} == good
    (Path(folder) / "model.safetensors").unlink()
    with pytest.raises(AnytaskError):
        create_backbone(f"hf:{folder}")


@pytest.mark.slow  # slices the real MiniLM and searches all 27 tiny nets (~10 s)
def test_anytask_distill_writes_a_student_every_command_can_use(tmp_path, capsys):
    import json

    from anytask.apps.cli import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    out = tmp_path / "student"
    assert main(["distill", "--corpus", str(corpus), "--steps", "1", "--batch-size", "4", "--held-out", "8",
                 "--align-steps", "1", "--out", str(out), "-q"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["backbone"] == f"hf:{out}" and report["flops_vs_teacher"] <= 1 / 3
    assert create_backbone(report["backbone"]).embed(["hello"]).shape == (1, 384)
    assert main(["distill", "--corpus", str(corpus), "--held-out", "100", "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "too few" in capsys.readouterr().err


def test_an_interrupted_distillation_resumes_from_its_checkpoint_to_the_same_weights(bert_folders, tmp_path,
                                                                                     monkeypatch):
    from anytask.methods.distill.autodistil import AutoDistil

    kw = dict(teacher=f"hf:{bert_folders[0]}", subspace=SPACE, steps=4, batch_size=8, max_length=16, sandwich=3,
              progress=False)
    whole = AutoDistil(**kw).fit(TEXTS)
    ckpt = tmp_path / "run.ckpt"
    calls = {"n": 0}
    real = AutoDistil._loss

    def dies_in_step_3(self, *a):
        calls["n"] += 1
        if calls["n"] > 2 * 3:  # 3 sub-networks a step: the third step's first loss
            raise KeyboardInterrupt
        return real(self, *a)

    monkeypatch.setattr(AutoDistil, "_loss", dies_in_step_3)
    with pytest.raises(KeyboardInterrupt):
        AutoDistil(**kw, checkpoint=str(ckpt), checkpoint_every=2).fit(TEXTS)
    monkeypatch.undo()
    assert ckpt.is_file()
    resumed = AutoDistil(**kw, checkpoint=str(ckpt), checkpoint_every=2).fit(TEXTS)
    assert resumed.history_ == pytest.approx(whole.history_) and resumed.sampled_ == whole.sampled_
    for a, b in zip(whole.superlm_.parameters(), resumed.superlm_.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(AnytaskError, match="another run"):
        AutoDistil(**{**kw, "lr": 1e-3}, checkpoint=str(ckpt)).fit(TEXTS)
