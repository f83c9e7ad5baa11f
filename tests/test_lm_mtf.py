"""Instructions and multitask prompted fine-tuning: the schema's strings, the target-only loss and its
per-target normalisation, LoRA on a copy (the backbone unchanged), zero-shot use of the merged copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.backbones import share_backbone, state_hash
from anytask.core.errors import AnytaskError
from anytask.methods.lm import CLUSTERS, TASKS, LMPromptHead, multitask_finetune, template, training_rows


def test_instruction_fields_produce_the_expected_strings():
    t = TASKS["trec"]
    full = t.encode("Who is he?")
    assert full.startswith("Definition: ") and full.endswith("input: Who is he?\noutput:")
    assert full.index("Negative Example 1-") < full.index("Positive Example 1-")
    assert t.encode("Who is he?", fields=()) == "input: Who is he?\noutput:"
    assert t.encode("x", fields=("definition",)) == f"Definition: {t.definition}\ninput: x\noutput:"
    assert template("sst2").count("{text}") == 1
    with pytest.raises(AnytaskError, match="unknown instruction fields"):
        t.encode("x", fields=("title",))
    with pytest.raises(AnytaskError, match="no instruction"):
        template("mnist")


def test_clusters_are_disjoint_and_cover_the_tasks():
    seen = [t for c in CLUSTERS.values() for t in c]
    assert len(seen) == len(set(seen)) and set(seen) == set(TASKS)


def test_loss_is_on_targets_only_and_normalised_per_target(tiny_lm):
    from anytask.backbones.lora import LoRACopy

    copy = LoRACopy(tiny_lm, rank=2, alpha=4)
    p, t_short, t_long = tiny_lm.encode("prompt", start=True), tiny_lm.encode(" a"), tiny_lm.encode(" abcdefgh")
    with torch.no_grad():
        one = copy.target_loss([(p, t_short)])
        # by hand: the mean NLL over the target's tokens, from the full sequence's logits
        ids = torch.tensor([p + t_short])
        logp = torch.log_softmax(copy.model(input_ids=ids).logits[0, :-1].float(), -1)
        manual = -logp[len(p) - 1 :, :].gather(1, ids[0, len(p):, None]).mean()
        assert torch.allclose(one, manual, atol=1e-5)
        # changing the prompt's tokens' targets cannot matter; each target weighs the same whatever its length
        both = copy.target_loss([(p, t_short), (p, t_long)])
        assert torch.allclose(both, (one + copy.target_loss([(p, t_long)])) / 2, atol=1e-5)
    with pytest.raises(AnytaskError, match="non-empty target"):
        copy.target_loss([(p, [])])


def test_mtf_trains_a_copy_and_the_merged_copy_serves_zero_shot(tiny_lm, tmp_path):
    before = state_hash(tiny_lm)
    texts = ["good film", "bad film", "great fun", "awful mess"] * 3
    labels = ["positive", "negative", "positive", "negative"] * 3
    rows = training_rows({"sst2": (texts, labels)}, fields=())
    assert rows[0] == ("input: good film\noutput:", " positive")
    copy, losses = multitask_finetune(tiny_lm, rows, steps=30, batch_size=4, lr=1e-2)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert state_hash(tiny_lm) == before  # the shared backbone never changes
    folder = copy.save_adapter(tmp_path / "adapter")
    assert (folder / "adapter_config.json").is_file() and not list(tmp_path.glob("adapter.*"))  # no temp left
    with pytest.raises(AnytaskError, match="already exists"):
        copy.save_adapter(folder)
    merged = copy.merged("tiny-causal+mtf-test")
    share_backbone("tiny-causal+mtf-test", merged)
    head = LMPromptHead(backbone="tiny-causal+mtf-test", k=0, template=template("sst2", ()), calibration=None)
    acc = (head.fit(texts, labels).predict(texts) == np.array(labels)).mean()
    assert acc >= 0.75  # it learnt the training pairs
    with pytest.raises(AnytaskError, match="built-in"):
        share_backbone("tiny-causal", merged)
