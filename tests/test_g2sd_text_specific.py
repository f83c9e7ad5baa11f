"""G2SD's specific stage for text: the distillation token, the two heads, the teacher's hard labels on
unlabelled texts, the student folder untouched; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core.errors import AnytaskError
from anytask.methods.distill import TASK_DISTILLERS

WORDS = {"sport": ["match", "goal", "team", "league"], "film": ["actor", "scene", "movie", "director"]}
X = [f"the {w} was {a}" for label, ws in WORDS.items() for w in ws for a in ("good", "long", "new", "odd")]
Y = [label for label, ws in WORDS.items() for w in ws for _ in range(4)]


def test_the_extra_token_is_read_and_left_out_of_the_text_mask(bert_folders):
    from anytask.backbones.trainable import hidden_states, load_encoder, states_with_token

    encoder, tok = load_encoder(bert_folders[0])
    inputs = dict(tok(["a short text", "a somewhat longer text here"], padding=True, return_tensors="pt"))
    token = torch.zeros(encoder.config.hidden_size)
    states, own = states_with_token(encoder, inputs, token)
    assert states.shape[1] == inputs["input_ids"].shape[1] + 1
    assert own[:, 1].sum() == 0 and torch.equal(own[:, [0, *range(2, own.shape[1])]], inputs["attention_mask"])
    plain = hidden_states(encoder, inputs)
    assert not torch.allclose(states[:, 0], plain[:, 0])  # [CLS] attends to the extra token


def test_specific_distillation_learns_the_task_and_leaves_the_student(bert_folders, monkeypatch):
    from anytask.backbones import state_hash
    from anytask.backbones.trainable import load_encoder

    teacher = f"hf:{bert_folders[0]}"
    student = bert_folders[1]
    before = state_hash(load_encoder(student)[0])
    unlabelled = [f"a {w} today" for ws in WORDS.values() for w in ws]
    clf = TASK_DISTILLERS.get("g2sd_text")(student=student, teacher=teacher, unlabelled=unlabelled, steps=60,
                                           batch_size=8, lr=1e-3, head_lr=1e-2, progress=False).fit(X, Y)
    assert np.mean(clf.predict(X) == np.array(Y)) >= 0.9
    proba = clf.predict_proba(X[:3])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert state_hash(load_encoder(student)[0]) == before
    # the teacher's hard predictions: its own linear probe, read back
    seen = {}
    original = type(clf)._teacher_labels

    def spy(self, X_, y_, texts):
        seen["texts"] = texts
        return original(self, X_, y_, texts)

    monkeypatch.setattr(type(clf), "_teacher_labels", spy)
    TASK_DISTILLERS.get("g2sd_text")(student=student, teacher=teacher, unlabelled=unlabelled, steps=1,
                                     batch_size=4, progress=False).fit(X, Y)
    assert seen["texts"] == X + unlabelled
    seen.clear()
    plain = TASK_DISTILLERS.get("g2sd_text")(student=student, teacher=teacher, unlabelled=unlabelled, steps=2,
                                             batch_size=4, distill=False, progress=False).fit(X, Y)
    assert not seen and plain.predict(X[:2]).shape == (2,)  # no teacher, no token


def test_bad_specific_distillation_requests_are_clear_errors(bert_folders, tmp_path):
    make = TASK_DISTILLERS.get("g2sd_text")
    with pytest.raises(AnytaskError, match="give student"):
        make(teacher=f"hf:{bert_folders[0]}").fit(X, Y)
    with pytest.raises(AnytaskError, match="not a student folder"):
        make(student=tmp_path, teacher=f"hf:{bert_folders[0]}").fit(X, Y)
    with pytest.raises(AnytaskError, match="one label per text"):
        make(student=bert_folders[1]).fit(X, Y[:-1])
    with pytest.raises(AnytaskError, match="two classes"):
        make(student=bert_folders[1]).fit(X, ["a"] * len(X))
    with pytest.raises(AnytaskError, match="not fitted"):
        make(student=bert_folders[1]).predict(X)


@pytest.mark.parametrize("distill", [True, False])
def test_a_saved_classifier_predicts_the_same_without_its_student_folder(bert_folders, tmp_path, distill):
    import shutil

    from anytask.core.io import load

    student = shutil.copytree(bert_folders[1], tmp_path / "student")
    unlabelled = [f"a {w} today" for ws in WORDS.values() for w in ws]
    clf = TASK_DISTILLERS.get("g2sd_text")(student=student, teacher=f"hf:{bert_folders[0]}", unlabelled=unlabelled,
                                           steps=4, batch_size=4, distill=distill, progress=False).fit(X, Y)
    before = clf.predict_proba(X)
    folder = clf.save_pretrained(tmp_path / "clf")
    shutil.rmtree(student)  # the saved folder carries the fine-tuned student, its config and tokenizer
    back = type(clf).from_pretrained(folder)
    assert np.allclose(back.predict_proba(X), before, atol=1e-6)
    assert list(back.predict(X)) == list(clf.predict(X)) and back.classes_.tolist() == clf.classes_.tolist()
    assert back.unlabelled is None and back.loss_curve_ == clf.loss_curve_
    assert type(load(folder)) is type(clf)
    with pytest.raises(AnytaskError, match="not fitted"):
        TASK_DISTILLERS.get("g2sd_text")(student=student).save_pretrained(tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_damaged_saved_classifier_is_refused(bert_folders, tmp_path):
    from anytask.core.io import load

    clf = TASK_DISTILLERS.get("g2sd_text")(student=bert_folders[1], teacher=f"hf:{bert_folders[0]}", steps=2,
                                           batch_size=4, progress=False).fit(X, Y)
    folder = clf.save_pretrained(tmp_path / "clf")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(AnytaskError, match="corrupted"):
        load(folder)
