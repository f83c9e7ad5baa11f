"""Seeded text degradations (data/noise.py) and RLQ's task-agnostic distillation onto a frozen teacher."""

from __future__ import annotations

import pytest
import torch

from anytask.backbones import create_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.data.noise import KINDS, degrade
from anytask.methods.distill import DISTILLERS

TEXTS = [f"the match number {i} was played in {w} weather" for i in range(24) for w in ("sunny", "rainy")]


@pytest.mark.parametrize("kind", KINDS)
def test_degradations_are_seeded_change_the_text_and_leave_the_input(kind):
    original = list(TEXTS)
    a, b = degrade(TEXTS, kind, 0.2, seed=1), degrade(TEXTS, kind, 0.2, seed=1)
    assert a == b and TEXTS == original and len(a) == len(TEXTS)
    assert sum(x != y for x, y in zip(a, TEXTS)) > len(TEXTS) // 2
    assert degrade(TEXTS, kind, 0.2, seed=2) != a
    if kind in ("typo", "chars"):  # case and mixed re-case words whatever the rate
        assert degrade(TEXTS, kind, 0.0, seed=1) == TEXTS


def test_bad_degradation_requests_are_clear_errors():
    with pytest.raises(AnytaskError, match="unknown degradation"):
        degrade(TEXTS, "blur")
    with pytest.raises(AnytaskError, match="between 0 and 1"):
        degrade(TEXTS, "typo", 1.5)
    with pytest.raises(AnytaskError, match="list of texts"):
        degrade("one string", "typo")


def test_rlq_trains_a_copy_that_reads_noisy_text_closer_to_the_clean_teacher(bert_folders, tmp_path):
    teacher_name = f"hf:{bert_folders[0]}"
    teacher = create_backbone(teacher_name)
    before = state_hash(teacher)
    rlq = DISTILLERS.get("rlq")(teacher=teacher_name, noise="typo", rate=0.3, steps=30, batch_size=8, lr=1e-3,
                                progress=False).fit(TEXTS)
    assert state_hash(create_backbone(teacher_name)) == before
    student = create_backbone(f"hf:{rlq.save_student(tmp_path / 'robust')}")
    clean, noisy = TEXTS[:16], degrade(TEXTS[:16], "typo", 0.3, seed=99)
    target = teacher.embed(clean)
    gap_teacher = 1 - torch.nn.functional.cosine_similarity(teacher.embed(noisy), target).mean()
    gap_student = 1 - torch.nn.functional.cosine_similarity(student.embed(noisy), target).mean()
    assert gap_student < gap_teacher
    with pytest.raises(AnytaskError, match="not fitted"):
        DISTILLERS.get("rlq")().save_student(tmp_path / "x")
    with pytest.raises(AnytaskError, match="unknown degradation"):
        DISTILLERS.get("rlq")(teacher=teacher_name, noise="blur").fit(TEXTS)
