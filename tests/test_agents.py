"""Agents family: the TextLM interface (backbone, oracle, routing, cache), the reasoning environments and RL of
Thoughts' navigator (card 34's test-sized checks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data.reasoning import BLOCKS, REASON, REFINE, TERMINATE, SimulatedReasoner, word_problems
from anytask.methods.agents import AGENTS, BackboneLM, CallStats, RoutedLM, RuleLM
from anytask.methods.agents.base import first_int
from anytask.methods.agents.rlot import (
    POLICIES, DuelingQ, LMReasoner, Navigator, Replay, double_dqn_targets, evaluate_policy, first_step_mask,
    parse_rubric,
    reasoning_oracle, run_episode,
)

SMALL = dict(episodes=40, buffer_size=40, batch_size=16, target_update=5, eps_decay=0.99)


# -- problems and the simulated reasoner ---------------------------------------------------------------------------
def test_word_problems_have_true_answers_and_are_seeded():
    for p in word_problems(30, "arith", seed=3):
        expr = p.question.removeprefix("What is ").removesuffix("?")
        assert eval(expr) == p.answer and p.answer in p.values  # noqa: S307 - our own template
    two = word_problems(5, "two-step", seed=1)
    assert two == word_problems(5, "two-step", seed=1) and all(p.answer >= 0 for p in two)
    with pytest.raises(AnytaskError, match="unknown problem family"):
        word_problems(3, "algebra")


def test_simulated_reasoner_api_and_outcome():
    env = SimulatedReasoner("base")
    obs, info = env.reset(seed=0)
    assert obs.shape == (7,) and set(obs) <= {0, 1, 2, 3} and info["remaining"] >= 1
    _, r, done, _, info = env.step(TERMINATE)
    assert done and r == float(info["correct"]) and info["correct"] is False  # nothing solved yet
    env.reset(seed=0)
    for _ in range(env.max_depth):
        _, _, done, _, _ = env.step(REASON)
        assert not done
    _, _, done, _, info = env.step(REASON)  # past max depth: the answer is forced
    assert done and info["forced"]
    with pytest.raises(AnytaskError, match="reset"):
        env.step(REASON)
    env.reset(seed=1)
    with pytest.raises(AnytaskError, match="outside the 5 logic blocks"):
        env.step(7)
    with pytest.raises(AnytaskError, match="unknown reasoner setting"):
        SimulatedReasoner("easy")
    with pytest.raises(AnytaskError, match="unknown reasoner parameters"):
        SimulatedReasoner("base", p_solve=0.5)


def test_simulated_reasoner_is_seeded():
    a, b = SimulatedReasoner("noisy"), SimulatedReasoner("noisy")
    for env in (a, b):
        env.reset(seed=5)
    for act in (REASON, REFINE, 1, 2):
        np.testing.assert_array_equal(a.step(act)[0], b.step(act)[0])


# -- parsing ----------------------------------------------------------------------------------------------------
def test_parse_rubric_reads_values_and_falls_back_to_zero():
    stats = CallStats()
    text = "A1: True\nA2: unsure\nA3 = False\nB1: Maybe\nC1: **Yes**\nnonsense C2: perhaps"
    np.testing.assert_array_equal(parse_rubric(text, stats), [3, 2, 1, 2, 0, 3, 0])
    assert stats.parse_failures["rubric"] == 2
    np.testing.assert_array_equal(parse_rubric("I cannot judge this.", stats), np.zeros(7))
    assert stats.parse_failures["rubric"] == 9
    np.testing.assert_array_equal(parse_rubric(None), np.zeros(7))


def test_first_int_counts_failures():
    stats = CallStats()
    assert first_int(" 1,234 apples") == 1234 and first_int("it is -3") == -3
    assert first_int("no number here", stats, "block:terminate") is None
    assert stats.parse_failures == {"block:terminate": 1}


# -- the navigator's pieces ----------------------------------------------------------------------------------------
def test_double_dqn_target_uses_online_argmax_and_target_value():
    torch.manual_seed(0)
    online, target = DuelingQ(7, 5, 8), DuelingQ(7, 5, 8)
    with torch.no_grad():  # the online network prefers block 2, the target network block 0
        online.advantage.bias.copy_(torch.tensor([0.0, 0, 5, 0, 0]))
        target.advantage.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0]))
    s2 = torch.rand(6, 7)
    r, done = torch.arange(6.0), torch.tensor([0.0, 1, 0, 0, 1, 0])
    y = double_dqn_targets(online, target, r, done, s2, 0.9)
    with torch.no_grad():
        a = online(s2).argmax(1)
        expect = r + 0.9 * (1 - done) * target(s2)[torch.arange(6), a]
    torch.testing.assert_close(y, expect)
    assert not torch.allclose(y, r + 0.9 * (1 - done) * target(s2).max(1).values)  # not the plain-DQN max


def test_replay_respects_its_capacity():
    buf = Replay(5, 7)
    for i in range(12):
        buf.add(np.full(7, i), i % 5, float(i), 0.0, np.full(7, i))
    assert len(buf) == 5 and sorted(buf.r.tolist()) == [7, 8, 9, 10, 11]
    s, *_ = buf.sample(np.random.default_rng(0), 32)
    assert s.shape == (32, 7) and set(s[:, 0].tolist()) <= {7, 8, 9, 10, 11}


def test_first_step_mask_replaces_refine_with_reason():
    nav = Navigator(**SMALL).fit("base")
    with torch.no_grad():  # make refine the greedy block everywhere
        nav.net_.advantage.bias.copy_(torch.tensor([0.0, 0, 0, 100, 0]))
    obs = np.array([[3, 2, 3, 2, 1, 1, 1]])
    assert nav.predict(obs)[0] == REFINE and nav.act(obs, t=1) == REFINE
    assert nav.act(obs, t=0) == REASON
    assert first_step_mask(REFINE, 0) == REASON and first_step_mask(REFINE, 1) == REFINE
    ep = run_episode(SimulatedReasoner("base"), lambda o, t: REFINE, seed=0)
    assert ep["blocks"][0] == "reason" and set(ep["blocks"][1:]) == {"refine"}


def test_navigator_is_small_seeded_and_round_trips(tmp_path):
    nav = Navigator(**SMALL, seed=3).fit("base")
    assert nav.n_parameters() < 3000 and nav.n_updates_ > 0 and len(nav.curve_) == SMALL["episodes"]
    again = Navigator(**SMALL, seed=3).fit("base")
    obs = np.random.default_rng(0).integers(0, 4, (20, 7))
    np.testing.assert_allclose(again.q_values(obs), nav.q_values(obs), atol=1e-6)
    io.save(nav, tmp_path / "nav")
    loaded = io.load(tmp_path / "nav")
    np.testing.assert_allclose(loaded.q_values(obs), nav.q_values(obs), atol=1e-6)
    assert loaded.evaluate("base", 30) == nav.evaluate("base", 30)
    with pytest.raises(AnytaskError, match="7 features|features"):
        nav.q_values(np.zeros((2, 5)))
    with pytest.raises(AnytaskError, match="take the values"):
        nav.q_values(np.full((1, 7), 9))
    with pytest.raises(AnytaskError, match="positive integer"):
        Navigator(episodes=0).fit("base")
    with pytest.raises(AnytaskError, match="not a reasoning environment"):
        Navigator(**SMALL).fit(object())


def test_fixed_policies_run_on_the_simulator():
    res = {name: evaluate_policy("base", make(0), 60, seed=1) for name, make in POLICIES.items()}
    assert res["always-reason"]["steps"] == 6 and res["direct"]["steps"] == 1 and res["cot"]["steps"] == 3
    assert all(0 <= r["accuracy"] <= 1 for r in res.values())
    assert res["direct"]["accuracy"] == 0  # nothing is solved without a block


# -- the LM interface ---------------------------------------------------------------------------------------------
def test_backbone_lm_generates_rates_and_caches(tiny_lm, tmp_path):
    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    lm = BackboneLM(tiny_lm, cache_dir=tmp_path, chat=False)
    text = lm.generate("Problem: 2 + 2\n", kind="block:reason", max_new_tokens=5)
    assert isinstance(text, str)
    scores = lm.rate("Judge:", ["A1", "A2"], ["False", "Maybe", "True"], kind="rubric")
    assert scores.shape == (2, 3) and np.isfinite(scores).all()
    assert lm.generate("Problem: 2 + 2\n", kind="block:reason", max_new_tokens=5) == text
    assert lm.stats.calls["block:reason"] == 2 and lm.stats.cached["block:reason"] == 1
    with open(tmp_path / "lm_answers.jsonl", "a") as f:
        f.write('{"key": "torn')  # an interrupted write: that answer is asked again, nothing else is lost
    fresh = BackboneLM(tiny_lm, cache_dir=tmp_path, chat=False)
    np.testing.assert_allclose(fresh.rate("Judge:", ["A1", "A2"], ["False", "Maybe", "True"], kind="rubric"), scores)
    assert fresh.stats.cached["rubric"] == 1
    assert all(torch.equal(v, tiny_lm.model.state_dict()[k]) for k, v in before.items())  # never mutated
    with pytest.raises(AnytaskError, match="not a causal LM"):
        BackboneLM("tiny")


def test_routed_lm_sends_each_kind_to_its_answerer():
    a = RuleLM(lambda kind, p: "from a", name="a")
    b = RuleLM(lambda kind, p: "from b", lambda kind, p, q, o: np.zeros((len(q), len(o))), name="b")
    lm = RoutedLM({"block:": a, "rubric": b}, default=b)
    assert lm.generate("x", kind="block:reason") == "from a" and lm.generate("x", kind="prm") == "from b"
    assert lm.rate("x", ["q"], ["y", "n"], kind="rubric").shape == (1, 2)
    assert a.stats.calls == {"block:reason": 1} and lm.stats.total_calls == 3
    with pytest.raises(AnytaskError, match="does not rate"):
        RoutedLM({}, default=a).rate("x", ["q"], ["y"], kind="rubric")
    bad = RuleLM(rate=lambda kind, p, q, o: np.zeros(3))
    with pytest.raises(AnytaskError, match="shape"):
        bad.rate("x", ["q"], ["y", "n"])


# -- the LM-run environment ---------------------------------------------------------------------------------------
def test_lm_reasoner_with_the_oracle_solves_every_problem():
    probs = [p for fam in ("arith", "word", "two-step") for p in word_problems(3, fam, seed=2)]
    env = LMReasoner(probs, reasoning_oracle(probs))
    for name in ("rule", "cot", "always-reason", "direct"):
        res = evaluate_policy(env, POLICIES[name](0))
        assert res["accuracy"] == 1.0 and res["episodes"] == len(probs)
    assert evaluate_policy(env, POLICIES["rule"](0))["steps"] < 6  # the rubric says when the answer is reached


def test_oracle_judge_flags_wrong_steps_and_unparsable_answers_are_counted():
    probs = word_problems(2, "word", seed=0)
    oracle = reasoning_oracle(probs)
    wrong = RuleLM(lambda kind, p: "I do not know" if kind == "block:terminate" else "So 5 + 5 = 999.", name="wrong")
    lm = RoutedLM({"rubric": oracle, "prm": oracle}, default=wrong)
    env = LMReasoner(probs, lm)
    env.reset(options={"index": 0})
    obs, r, *_ = env.step(REASON)
    assert obs[2] == 1 and obs[5] == 1 and r < 0.1  # calculation judged wrong, answer not reached
    _, r, done, _, info = env.step(TERMINATE)
    assert done and info["answer"] is None and not info["correct"] and r == 0
    assert lm.stats.parse_failures["block:terminate"] == 1  # counted by the answerer the environment talks to
    with pytest.raises(AnytaskError, match="outside the 5 logic blocks"):
        env.reset(options={"index": 0}) and env.step(-1)
    with pytest.raises(AnytaskError, match="problem index"):
        env.reset(options={"index": 5})
    with pytest.raises(AnytaskError, match="at least one problem"):
        LMReasoner([], oracle)
    with pytest.raises(AnytaskError, match="rubric="):
        LMReasoner(probs, oracle, rubric="vote")


def test_lm_reasoner_runs_every_block_on_a_real_causal_lm():
    from anytask.backbones.causal import tiny_causal

    probs = word_problems(1, "arith", seed=0)
    lm = BackboneLM(tiny_causal(max_length=4096), chat=False)  # byte-level tokens: long prompts
    for rubric in ("rate", "generate"):
        env = LMReasoner(probs, lm, rubric=rubric, max_new_tokens=4)
        obs, _ = env.reset()
        assert obs.shape == (7,) and set(obs) <= {0, 1, 2, 3}
        for block in range(len(BLOCKS) - 1):
            obs, r, done, _, _ = env.step(block)
            assert not done and 0 <= r <= 1
        _, _, done, _, info = env.step(TERMINATE)
        assert done and info["calls"] > 0
    assert lm.stats.calls["block:debate"] == 2 * 5  # per run: 3 plans, the choice, the step


def test_navigator_trains_on_an_lm_environment():
    probs = word_problems(3, "arith", seed=0)
    nav = Navigator(**{**SMALL, "episodes": 12, "buffer_size": 10}).fit(LMReasoner(probs, reasoning_oracle(probs)))
    assert nav.n_updates_ > 0 and 0 <= nav.evaluate(LMReasoner(probs, reasoning_oracle(probs)))["accuracy"] <= 1


def test_registered_with_its_paper():
    entry = AGENTS.entry("rlot")
    assert "2505.14140" in entry.reference and entry.caps.saveable
    assert json.loads(json.dumps(Navigator().get_params()))["gamma"] == 0.9
