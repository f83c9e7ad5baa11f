"""The GPT-3 few-shot head: scorer tables, calibration, demonstration sampling, context limits,
errors, persistence and the frozen LM (on the tiny causal LM; SmolLM2 where installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.backbones import state_hash
from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.heads import HEADS, create_head
from anytask.methods.lm import LMPromptHead, calibrate, choice_scores

TEXTS = [f"{w} item {i}" for i in range(6) for w in ("good fine", "bad poor", "meh so-so")]
LABELS = ["positive", "negative", "neutral"] * 6


def test_registered_with_its_papers():
    entry = HEADS.entry("lm_prompt")
    assert entry.caps.input == "texts" and entry.caps.saveable and "2005.14165" in entry.reference
    assert "2102.09690" in entry.reference


def test_each_normalisation_flips_the_answer_on_a_hand_built_table():
    sums = torch.tensor([[-4.0, -3.0]])              # choice 0 is 4 tokens / 8 bytes, choice 1 is 1 token / 2 bytes
    n_tokens, n_bytes = torch.tensor([4, 1]), torch.tensor([8, 2])
    unconditional = torch.tensor([-6.0, -1.0])     # choice 0 is a priori unlikely
    pick = {m: int(choice_scores(sums, n_tokens, n_bytes, unconditional, m).argmax()) for m in
            ("sum", "per_token", "per_byte", "unconditional")}
    assert pick == {"sum": 1, "per_token": 0, "per_byte": 0, "unconditional": 0}
    with pytest.raises(AnytaskError, match="unknown scoring"):
        choice_scores(sums, n_tokens, n_bytes, unconditional, "mean")


def test_calibration_makes_the_content_free_prediction_uniform():
    cf = torch.tensor([[[-0.1, -2.5, -4.0]], [[-0.7, -1.0, -3.0]]])  # two examples, one content-free input each
    out = calibrate(cf[:, 0], cf)
    assert torch.allclose(out.exp(), torch.full((2, 3), 1 / 3), atol=1e-6)
    # with several content-free inputs the *mean* of their distributions becomes uniform
    many = torch.tensor([[[-0.1, -2.5], [-1.5, -0.3]]])
    p_cf = torch.softmax(many, -1).mean(1)
    out = calibrate(torch.log(p_cf), many)
    assert torch.allclose(out.exp(), torch.full((1, 2), 0.5), atol=1e-6)
    assert torch.allclose(calibrate(cf[:, 0], None), torch.log_softmax(cf[:, 0], -1))


def test_fit_predict_contract_on_the_tiny_lm(tiny_lm):
    before = state_hash(tiny_lm)
    head = create_head("lm_prompt", backbone="tiny-causal", k=3, seed=0).fit(TEXTS, LABELS)
    proba = head.predict_proba(TEXTS[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert set(head.predict(TEXTS[:5])) <= set(LABELS) and head.classes_.tolist() == sorted(set(LABELS))
    assert len(head.demo_idx_) == 3 and {head.y_[i] for i in head.demo_idx_} == {0, 1, 2}  # balanced: one per class
    np.testing.assert_allclose(head.predict_proba(TEXTS[:5]), proba)  # deterministic
    # a text's answer does not depend on the batch it comes in
    np.testing.assert_allclose(head.predict_proba(TEXTS[2:3]), proba[2:3], atol=1e-5)
    assert state_hash(tiny_lm) == before


def test_per_example_demos_never_include_the_item_and_are_seeded(tiny_lm):
    head = LMPromptHead(backbone="tiny-causal", k=17, demos="per_example", selection="random", seed=3)
    head.fit(TEXTS, LABELS)
    for t in TEXTS:
        rng = np.random.default_rng([3, __import__("zlib").crc32(t.encode())])
        idx = head._demo_indices(rng, exclude=t)
        assert len(idx) == 17 and t not in [head.texts_[i] for i in idx]
    a = head.predict_proba(TEXTS[:4])
    b = LMPromptHead(backbone="tiny-causal", k=17, demos="per_example", selection="random", seed=3).fit(
        TEXTS, LABELS).predict_proba(TEXTS[:4])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_similar_selection_takes_each_texts_nearest_labelled_texts_nearest_last(tiny_lm, tiny):
    head = LMPromptHead(backbone="tiny-causal", k=3, demos="per_example", selection="similar", retriever="tiny")
    head.fit(TEXTS, LABELS)
    queries = ["good fine item 2", "a new bad poor text"]
    nearest = head._nearest(queries)
    pool = tiny.embed(TEXTS).numpy()
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    for q, picked in zip(queries, nearest):
        v = tiny.embed([q]).numpy()[0]
        sims = pool @ (v / np.linalg.norm(v))
        allowed = [j for j in np.argsort(-sims, kind="stable") if TEXTS[j] != q]
        assert list(picked) == [int(j) for j in reversed(allowed[:3])]  # the 3 nearest, the nearest last
        assert q not in [TEXTS[j] for j in picked]  # a labelled text is never its own demonstration
    proba = head.predict_proba(queries)
    assert proba.shape == (2, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(head.predict_proba(queries[1:]), proba[1:], atol=1e-5)  # batch-independent
    with pytest.raises(AnytaskError, match="demos='per_example'"):
        LMPromptHead(backbone="tiny-causal", selection="similar").fit(TEXTS, LABELS)


def test_order_reshuffles_the_same_demonstrations(tiny_lm):
    a = LMPromptHead(backbone="tiny-causal", k=6, seed=1).fit(TEXTS, LABELS)
    b = LMPromptHead(backbone="tiny-causal", k=6, seed=1, order=5).fit(TEXTS, LABELS)
    assert sorted(a.demo_idx_) == sorted(b.demo_idx_) and a.demo_idx_ != b.demo_idx_


def test_zero_shot_and_scorings_run(tiny_lm):
    for scoring in ("sum", "per_token", "per_byte", "unconditional"):
        for calibration in (None, "contextual"):
            head = LMPromptHead(backbone="tiny-causal", k=0, scoring=scoring, calibration=calibration).fit(TEXTS, LABELS)
            assert head.predict_proba(TEXTS[:2]).shape == (2, 3)
    raw = LMPromptHead(backbone="tiny-causal", k=2).fit(TEXTS, LABELS).raw_scores(TEXTS[:3])
    assert raw["sums"].shape == (3, 3) and raw["content_free"].shape == (3, 3, 3)


def test_long_prompts_drop_demonstrations_never_the_query(tiny_lm):
    long_texts = [("word " * 40) + str(i) for i in range(12)]
    head = LMPromptHead(backbone="tiny-causal", k=10, max_demo_chars=None).fit(long_texts, ["a", "b"] * 6)
    with pytest.warns(UserWarning, match="fewer than k=10"):
        head.predict_proba(["short query"])
    with pytest.raises(AnytaskError, match="query is never cut"):
        head.predict(["x" * 600])


def test_bad_input_is_a_clear_error(tiny_lm):
    with pytest.raises(AnytaskError, match="no name to answer with"):
        LMPromptHead(backbone="tiny-causal").fit(TEXTS, [0, 1, 2] * 6)
    head = LMPromptHead(backbone="tiny-causal", verbalizers={0: " yes", 1: " no", 2: " maybe"}).fit(TEXTS, [0, 1, 2] * 6)
    assert head.predict(TEXTS[:2]).dtype.kind == "i"
    with pytest.raises(AnytaskError, match="no entry for class"):
        LMPromptHead(backbone="tiny-causal", verbalizers={0: " yes"}).fit(TEXTS, [0, 1, 2] * 6)
    with pytest.raises(AnytaskError, match="empty"):
        LMPromptHead(backbone="tiny-causal", verbalizers={0: " ", 1: " no", 2: " x"}).fit(TEXTS, [0, 1, 2] * 6)
    with pytest.raises(AnytaskError, match="share a verbalizer"):
        LMPromptHead(backbone="tiny-causal", verbalizers={0: " a", 1: " a", 2: " x"}).fit(TEXTS, [0, 1, 2] * 6)
    with pytest.raises(AnytaskError, match="at least 2"):
        LMPromptHead(backbone="tiny-causal").fit(TEXTS[:3], ["a"] * 3)
    with pytest.raises(AnytaskError, match="exactly once"):
        LMPromptHead(backbone="tiny-causal", template="no slot").fit(TEXTS, LABELS)
    with pytest.raises(AnytaskError, match="causal language model"):
        LMPromptHead(backbone="tiny").fit(TEXTS, LABELS)
    with pytest.raises(AnytaskError, match="raw texts"):
        LMPromptHead(backbone="tiny-causal").fit(np.zeros((18, 4), dtype=np.float32), LABELS)


def test_save_and_load_round_trip(tiny_lm, tmp_path):
    head = LMPromptHead(backbone="tiny-causal", k=4, scoring="per_token", seed=2).fit(TEXTS, LABELS)
    loaded = io.load(io.save(head, tmp_path / "lm-head"))
    assert (loaded.k, loaded.scoring, loaded.seed) == (4, "per_token", 2)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:4]), head.predict_proba(TEXTS[:4]), atol=1e-6)
    assert loaded.predict(TEXTS[:4]).tolist() == head.predict(TEXTS[:4]).tolist()


def test_smollm2_zero_shot_sentiment(smollm2):
    texts = ["I loved every minute of this film", "an awful, boring waste of time", "wonderful acting and a great story",
             "the worst movie I have seen this year"]
    labels = ["positive", "negative", "positive", "negative"]
    head = LMPromptHead(backbone="smollm2", k=0, template="Review: {text}\nSentiment:").fit(texts, labels)
    assert head.predict(texts).tolist() == labels


def test_fitted_calibration_learns_from_texts_outside_the_prompt(tiny_lm, tmp_path):
    head = LMPromptHead(backbone="tiny-causal", k=3, calibration="fitted").fit(TEXTS, LABELS)
    coef, bias = head.calibrator_
    assert coef.shape == (3, 3) and bias.shape == (3,)
    proba = head.predict_proba(TEXTS[:4])
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    loaded = io.load(io.save(head, tmp_path / "fitted"))
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:4]), proba, atol=1e-6)
    # every text of the pool in the prompt: nothing left to fit on, contextual calibration with a warning
    with pytest.warns(UserWarning, match="contextual calibration"):
        small = LMPromptHead(backbone="tiny-causal", k=4, calibration="fitted").fit(TEXTS[:4], LABELS[:4])
    assert small.calibrator_ is None and small.predict_proba(TEXTS[:2]).shape == (2, 3)


def test_cli_prompt_and_generate(tmp_path, capsys, tiny_lm):
    import json

    from anytask.apps.cli import main

    assert main(["prompt", "--backbone", "tiny-causal", "--labels", "good,bad", "--text", "nice one"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["label"] in ("good", "bad") and abs(sum(row["probabilities"].values()) - 1) < 1e-3
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in zip(TEXTS, LABELS)))
    assert main(["prompt", "--backbone", "tiny-causal", "--data", str(data), "--k", "2", "--text", "a",
                 "--text", "b"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main(["prompt", "--backbone", "tiny-causal", "--labels", "good", "--text", "x"]) == 2
    assert "two different label names" in capsys.readouterr().err
    assert main(["prompt", "--backbone", "tiny", "--labels", "a,b", "--text", "x"]) == 2
    assert "causal language model" in capsys.readouterr().err
    assert main(["generate", "--backbone", "tiny-causal", "abc", "--max-new-tokens", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"] == "abc"
    assert main(["generate", "--backbone", "tiny", "abc"]) == 2
    assert "cannot generate" in capsys.readouterr().err


def test_hso_lowers_the_prompt_loss_and_leaves_the_weights(tiny_lm, tmp_path):
    from anytask.methods.lm.hso import optimise_cache, segment_nll

    before = state_hash(tiny_lm)
    ids = tiny_lm.encode("Review: good\nSentiment: positive\n\nReview: bad\nSentiment: negative", start=True)
    result = optimise_cache(tiny_lm, ids, steps=3, lr=1e-2)
    assert len(result.losses) == 4 and all(b < a for a, b in zip(result.losses, result.losses[1:]))  # monotone
    assert state_hash(tiny_lm) == before and len(result.deltas) == len(tiny_lm.kv_shapes())
    out = segment_nll(tiny_lm, ["one two three four", "five six seven", "eight nine"], steps=2)
    assert out["tokens"] > 0 and out["nll"] > 0 and out["nll_hso"] > 0
    head = LMPromptHead(backbone="tiny-causal", k=3, hso_steps=2).fit(TEXTS, LABELS)
    plain = LMPromptHead(backbone="tiny-causal", k=3).fit(TEXTS, LABELS)
    assert head.hso_losses_[-1] < head.hso_losses_[0]
    assert not np.allclose(head.predict_proba(TEXTS[:3]), plain.predict_proba(TEXTS[:3]))  # the cache changed
    loaded = io.load(io.save(head, tmp_path / "hso"))
    np.testing.assert_allclose(loaded.predict_proba(TEXTS[:3]), head.predict_proba(TEXTS[:3]), atol=1e-5)
    assert state_hash(tiny_lm) == before
    with pytest.raises(AnytaskError, match="demos='fixed'"):
        LMPromptHead(backbone="tiny-causal", k=3, hso_steps=2, demos="per_example").fit(TEXTS, LABELS)


def test_bench_runs_lm_prompt_beside_feature_heads_on_a_causal_backbone(tmp_path, tiny_lm):
    import json

    from anytask.apps.cli import main

    out = tmp_path / "r.json"
    assert main(["bench", "--backbone", "tiny-causal", "--tasks", "synthetic:topics", "--heads", "lm_prompt,linear_probe",
                 "--shots", "2", "--seeds", "1", "--out", str(out)]) == 0
    heads = {row["head"] for row in json.loads(out.read_text())["results"]}
    assert heads == {"lm_prompt", "linear_probe"}
