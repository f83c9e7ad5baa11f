"""RL-100 (card 15): the chain's closed-form log-probabilities, PPO clipping, the OPE gate's common random numbers,
the one-step student, bad input, save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.methods.control.rl100 import RL100, DiffusionPolicy, ppo_loss, push_features

pytest.importorskip("gymnasium", reason="RL-100 runs on the push world (control extra: gymnasium)")
TINY = dict(demos=20, il_steps=200, offline_iters=1, rollouts=8, fqe_steps=50, ppo_steps=5, online_iters=1,
            online_episodes=8, distill_steps=200, eval_episodes=10, hidden=32)


@pytest.fixture(scope="module")
def fitted():
    return RL100(seed=0, gate_check=True, **TINY).fit("anytask/Push-v0", max_steps=30)


def test_denoising_step_logprobs_match_the_closed_form_gaussian():
    torch.manual_seed(0)
    pol = DiffusionPolicy(10, 2, 5, 16, 0.1)
    s = torch.randn(7, 10)
    gen = torch.Generator().manual_seed(0)
    _, chain = pol.sample(s, gen, explore=True)
    lp = pol.chain_logprob(s, chain)
    assert lp.shape == (7, 5)
    for i, k in enumerate(reversed(range(5))):
        ref = torch.distributions.Normal(pol.mean(chain[i], k, s), pol.sched.sigma[k]).log_prob(chain[i + 1]).sum(1)
        torch.testing.assert_close(lp[:, i], ref)


def test_ppo_clipping_bounds_the_ratio():
    old = torch.zeros(4, 3)
    new = torch.full((4, 3), 0.5, requires_grad=True)  # ratio e^0.5 = 1.65 > 1 + clip
    loss = ppo_loss(new, old, torch.ones(4), clip=0.2)
    assert loss.item() == pytest.approx(-1.2)
    loss.backward()
    assert torch.all(new.grad == 0)  # clipped: no push further
    neg = torch.full((4, 3), 0.5, requires_grad=True)  # with a negative advantage the unclipped term is kept
    ppo_loss(neg, old, -torch.ones(4), clip=0.2).backward()
    assert torch.all(neg.grad > 0)


def test_the_deterministic_chain_is_a_function_of_the_starting_noise():
    pol = DiffusionPolicy(10, 2, 5, 16, 0.1)
    s, z = torch.randn(6, 10), torch.randn(6, 2)
    a = pol.sample(s, torch.Generator().manual_seed(1), a_K=z)
    b = pol.sample(s, torch.Generator().manual_seed(2), a_K=z)
    torch.testing.assert_close(a, b)
    assert a.abs().max() <= 1


def test_fit_runs_every_stage_gates_and_round_trips(fitted, tmp_path):
    m = fitted
    stages = [h["stage"] for h in m.history_]
    assert stages == ["demos", "imitation", "offline", "online", "one-step"]
    off = m.history_[2]
    assert off["accepted"] == (off["ope"] > off["ope_old"]) and "corrupted_rejected" in off
    states = m._demos(4, 9)["s"][:50]
    multi, one = m.predict(states), m.predict(states, one_step=True)
    assert multi.shape == (50, 2) and np.abs(multi).max() <= 1
    assert np.abs(multi - one).mean() < 0.25  # the student imitates the chain (a short distillation here)
    np.testing.assert_allclose(m.predict(states), multi)  # seeded
    io.save(m, tmp_path / "rl100")
    loaded = io.load(tmp_path / "rl100")
    np.testing.assert_allclose(loaded.predict(states), multi, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(states, one_step=True), one, atol=1e-6)
    lat = m.latency(repeats=5)  # measured, not compared: which is faster is the benchmark's to say (rl100.json)
    assert lat["one_step_ms"] > 0 and lat["multi_step_ms"] > 0


def test_the_same_critic_seed_scores_the_same_policy_equally():
    m = RL100(seed=0, **TINY)
    m.env_id_, m.env_kwargs_ = "anytask/Push-v0", {}
    demos = m._demos(8, 0)
    m._starts = demos["start"]
    pol = DiffusionPolicy(push_features(torch.from_numpy(demos["s"][:1])).shape[1], 2, 10, 16, 0.1)
    buf = {k: demos[k] for k in ("s", "a", "r", "s2", "terminal")}
    assert m._fqe(pol, buf, 5) == m._fqe(pol, buf, 5)  # so an unchanged candidate is never accepted (strict >)


def test_bad_input_is_a_clear_error(fitted):
    with pytest.raises(AnytaskError, match="Push-v0"):
        RL100(**TINY).fit("MinAtar/Breakout-v1")
    with pytest.raises(AnytaskError, match="unknown push-world options"):
        RL100(**TINY).fit("anytask/Push-v0", gravity=3)
    with pytest.raises(AnytaskError, match="il_steps"):
        RL100(il_steps=0).fit()
    with pytest.raises(AnytaskError, match="demo_noise"):
        RL100(demo_noise=()).fit()
    with pytest.raises(AnytaskError, match="6 numbers"):
        fitted.predict(np.zeros((3, 8)))
    with pytest.raises(AnytaskError, match="NaN"):
        fitted.predict(np.full((1, 6), np.nan))


@pytest.mark.slow
def test_fit_is_seeded(fitted):
    states = fitted._demos(4, 9)["s"][:50]
    again = RL100(seed=0, gate_check=True, **TINY).fit("anytask/Push-v0", max_steps=30)
    np.testing.assert_allclose(again.predict(states), fitted.predict(states), atol=1e-6)
    assert again.history_ == fitted.history_


@pytest.mark.slow
def test_an_interrupted_fit_resumes_to_the_same_policy(fitted, tmp_path, monkeypatch):
    states = fitted._demos(4, 9)["s"][:50]
    calls = []

    def boom(*args):
        calls.append(1)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(RL100, "_online", boom)
        with pytest.raises(KeyboardInterrupt):
            RL100(seed=0, gate_check=True, checkpoint_dir=str(tmp_path), **TINY).fit("anytask/Push-v0", max_steps=30)
    assert calls and (tmp_path / "checkpoint.pt").is_file()
    resumed = RL100(seed=0, gate_check=True, checkpoint_dir=str(tmp_path), **TINY).fit("anytask/Push-v0",
                                                                                       max_steps=30)
    np.testing.assert_allclose(resumed.predict(states), fitted.predict(states), atol=1e-6)
    assert resumed.history_ == fitted.history_
    with pytest.raises(AnytaskError, match="other parameters"):
        RL100(seed=1, checkpoint_dir=str(tmp_path), **TINY).fit("anytask/Push-v0", max_steps=30)
