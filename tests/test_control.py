"""Control family: PVN's learning rule (card 38's test-sized checks), the encoders and the Q-learners."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.core.extras import has
from anytask.methods.control import ENCODERS, LEARNERS
from anytask.methods.control.base import ema_update
from anytask.methods.control.pvn import dsm_loss, dsm_targets, hash_indicators, quantile_loss

HAS_ENVS = has("gymnasium") and has("minatar")
needs_minatar = pytest.mark.skipif(not HAS_ENVS, reason="MinAtar environments need the control extra "
                                   "(pip install 'anytask[control]': gymnasium, minatar)")
ENV = "MinAtar/Breakout-v1"


def test_target_averages_next_actions_and_stops_at_terminals():
    c = torch.tensor([[1.0, 0.0]])
    nxt = torch.tensor([[[0.0, 4.0], [2.0, 2.0]]])  # (B=1, T=2, A=2): max would give 4, the mean gives 2
    y = dsm_targets(c, nxt, torch.tensor([False]), 0.5)
    assert torch.allclose(y, torch.tensor([[1.0 + 0.5 * 2.0, 0.5 * 2.0]]))
    assert torch.allclose(dsm_targets(c, nxt, torch.tensor([True]), 0.5), c)  # no bootstrap after a terminal


def test_chain_successor_measure_matches_closed_form():
    """A 5-state chain, actions left / right, the uniform policy: psi learned with the PVN loss on every
    (s, a) equals r(s) + gamma sum_s' P_a(s, s') [(I - gamma P_pi)^-1 r](s') for each indicator."""
    S, A, T, gamma = 5, 2, 3, 0.9
    P = np.zeros((A, S, S))
    for s in range(S):
        P[0, s, max(s - 1, 0)] = 1
        P[1, s, min(s + 1, S - 1)] = 1
    cum = (np.random.default_rng(0).random((S, T)) < 0.4).astype(float)
    M = np.linalg.inv(np.eye(S) - gamma * P.mean(0))
    closed = cum[:, :, None] + gamma * np.einsum("ast,ti->sia", P, M @ cum)
    s = torch.arange(S).repeat_interleave(A)
    a = torch.arange(A).repeat(S)
    s_next = torch.as_tensor(P.argmax(2)[a.numpy(), s.numpy()])
    psi = nn.Parameter(torch.zeros(S, T, A))
    opt = torch.optim.SGD([psi], lr=0.5 * len(s) * T)  # each step moves psi halfway to its target
    c = torch.as_tensor(cum, dtype=torch.float32)
    for _ in range(600):
        y = dsm_targets(c[s], psi[s_next].detach(), torch.zeros(len(s), dtype=torch.bool), gamma)
        loss = dsm_loss(psi[s], a, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(psi.detach().numpy(), closed, atol=1e-3)


def test_quantile_regression_reaches_the_firing_rate():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(20_000, 4, generator=g) * torch.tensor([1.0, 3.0, 0.5, 2.0])
    b = nn.Parameter(torch.zeros(4))
    opt = torch.optim.Adam([b], lr=0.02)
    for _ in range(3_000):
        o = f[torch.randint(len(f), (512,), generator=g)] + b
        opt.zero_grad()
        quantile_loss(o, 0.02).backward()
        opt.step()
    rate = ((f + b.detach()) > 0).float().mean(0)
    assert torch.all((rate - 0.02).abs() <= 0.005), rate


def test_nstep_return_discounts_and_stops_at_terminals():
    from anytask.methods.control.qlearning import nstep_return

    assert nstep_return([1.0, 0.0, 2.0], 0.5, False) == (1.0 + 0.25 * 2.0, 0.125)
    assert nstep_return([1.0, 1.0], 0.5, True) == (1.5, 0.0)  # terminal: no bootstrap
    assert nstep_return([3.0], 0.9, False) == (3.0, 0.9)


def test_ema_target_matches_the_formula():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 0.01)
    for t, o, b in zip(target.parameters(), online.parameters(), before):
        assert torch.allclose(t, 0.01 * o + 0.99 * b)


def test_hash_indicators_fire_at_one_over_m():
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 2, (20_000, 100), generator=g)
    a, a0 = torch.randint(1, 8191, (100, 8), generator=g), torch.randint(0, 8191, (8,), generator=g)
    fired = hash_indicators(frames, a, a0, 20)
    assert abs(float(fired.mean()) - 0.05) < 0.005
    assert torch.equal(fired, hash_indicators(frames, a, a0, 20))


@pytest.fixture(scope="module")
def data():
    if not HAS_ENVS:
        pytest.skip("MinAtar environments need the control extra (gymnasium, minatar)")
    from anytask.data.envs import collect

    return collect(ENV, 3_000, seed=0)


@needs_minatar
def test_collect_is_seeded_and_shaped(data):
    from anytask.data.envs import collect

    assert data.obs.shape == (3_000, 10, 10, 4) and data.obs.dtype == np.uint8 and data.n_actions == 3
    again = collect(ENV, 3_000, seed=0)
    assert np.array_equal(again.obs, data.obs) and np.array_equal(again.action, data.action)
    assert len(data.episode_returns) > 5 and data.terminal.sum() == len(data.episode_returns)


@needs_minatar
def test_unknown_environment_is_a_clear_error():
    from anytask.data.envs import make_env

    with pytest.raises(AnytaskError, match="Did you mean 'MinAtar/Breakout-v1'"):
        make_env("MinAtar/Breakout-v9")


@needs_minatar
@pytest.mark.parametrize("indicator", ["rnd", pytest.param("hash", marks=pytest.mark.slow)])
def test_pvn_trains_saves_and_keeps_calibration(data, indicator, tmp_path):
    enc = ENCODERS.get("pvn")(n_tasks=12, width=32, indicator=indicator, p=0.05, steps=150, batch_size=64,
                              warmup=20, seed=0).fit(data)
    assert enc.history_[-1]["loss"] > 0 and np.isfinite(enc.history_[-1]["loss"])
    X = enc.embed(data.obs[:50])
    assert X.shape == (50, 32) and (X >= 0).all()
    if indicator == "rnd":  # ties among repeated frames limit each task; the average is calibrated
        assert abs(float(enc.fire_rate(data.obs).mean()) - 0.05) <= 0.005
    enc.save_pretrained(tmp_path / "enc")
    back = io.load(tmp_path / "enc")
    np.testing.assert_allclose(back.embed(data.obs[:50]), X, atol=1e-6)
    np.testing.assert_allclose(back.fire_rate(data.obs[:500]), enc.fire_rate(data.obs[:500]))
    with pytest.raises(AnytaskError, match=r"shape \(10, 10, 4\)"):
        enc.embed(np.zeros((3, 10, 10, 6), np.uint8))


@needs_minatar
@pytest.mark.slow
def test_pvn_resumes_from_its_checkpoint(data, tmp_path, monkeypatch):
    import anytask.methods.control.base as base

    kw = dict(n_tasks=8, width=16, steps=60, batch_size=32, warmup=5, seed=0)
    full = ENCODERS.get("pvn")(**kw).fit(data)
    real, calls = base.save_checkpoint, []

    def crash_after_first(folder, state):
        real(folder, state)
        calls.append(state["step"])
        raise KeyboardInterrupt

    monkeypatch.setattr(base, "save_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        ENCODERS.get("pvn")(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=25).fit(data)
    monkeypatch.setattr(base, "save_checkpoint", real)
    assert calls == [25]
    resumed = ENCODERS.get("pvn")(**kw, checkpoint_dir=str(tmp_path), checkpoint_every=25).fit(data)
    np.testing.assert_allclose(resumed.embed(data.obs[:40]), full.embed(data.obs[:40]), atol=1e-5)
    with pytest.raises(AnytaskError, match="other parameters or data"):
        ENCODERS.get("pvn")(**{**kw, "width": 8}, checkpoint_dir=str(tmp_path)).fit(data)


@needs_minatar
def test_encoder_rejects_bad_input(data):
    with pytest.raises(AnytaskError, match="environment id or anytask.data.envs.Transitions"):
        ENCODERS.get("pvn")(steps=5).fit(np.zeros((10, 4)))
    with pytest.raises(AnytaskError, match="indicator="):
        ENCODERS.get("pvn")(indicator="bogus").fit(data)
    with pytest.raises(AnytaskError, match="p="):
        ENCODERS.get("pvn")(p=0.7).fit(data)


@needs_minatar
def test_linear_q_never_changes_the_encoder_and_round_trips(data, tmp_path):
    from anytask.backbones.base import state_hash

    enc = ENCODERS.get("reconstruction")(width=32, steps=50, batch_size=64, seed=0).fit(data)
    before = state_hash(enc.torso_)
    agent = LEARNERS.get("linear_q")(encoder=enc, steps=400, learning_starts=100, seed=0).fit(ENV)
    assert state_hash(enc.torso_) == before
    assert agent.curve_ and all(len(c) == 3 for c in agent.curve_)
    q = agent.q_values(data.obs[:20])
    assert q.shape == (20, 3) and np.isfinite(q).all()
    agent.save_pretrained(tmp_path / "agent")
    back = io.load(tmp_path / "agent")
    np.testing.assert_allclose(back.q_values(data.obs[:20]), q, atol=1e-6)
    res = back.evaluate(episodes=2, max_steps=200)
    assert len(res["returns"]) == 2
    with pytest.raises(AnytaskError, match="trained on MinAtar/Breakout-v1"):
        back.evaluate("MinAtar/Asterix-v1")
    with pytest.raises(AnytaskError, match=r"observations \(10, 10, 4\)"):  # SpaceInvaders has 6 planes
        LEARNERS.get("linear_q")(encoder=enc, steps=10).fit("MinAtar/SpaceInvaders-v1")
    with pytest.raises(AnytaskError, match="needs encoder="):
        LEARNERS.get("linear_q")(steps=10).fit(ENV)


@needs_minatar
@pytest.mark.slow
def test_dqn_learns_from_scratch_and_is_seeded():
    a = LEARNERS.get("dqn")(width=32, steps=300, learning_starts=100, seed=0).fit(ENV)
    b = LEARNERS.get("dqn")(width=32, steps=300, learning_starts=100, seed=0).fit(ENV)
    obs = np.zeros((2, 10, 10, 4), np.uint8)
    np.testing.assert_allclose(a.q_values(obs), b.q_values(obs), atol=1e-6)
    assert [c[0] for c in a.curve_] == [c[0] for c in b.curve_]


# -- the object-goal navigation world and the codebook bottleneck (card 33) ------------------------------------------

def test_codebook_probabilities_sum_to_one_and_codes_learn():
    from anytask.methods.control.codebook import Codebook

    torch.manual_seed(0)
    cb = Codebook(20, k=8, code_dim=3, dropout=0.1)
    e = torch.randn(5, 20)
    assert torch.allclose(cb.probs(e).sum(-1), torch.ones(5))
    cb.train()
    cb(e).pow(2).sum().backward()
    assert cb.codes.grad is not None and cb.codes.grad.abs().sum() > 0
    frozen = Codebook(20, k=8, code_dim=3, learned=False)
    assert not frozen.codes.requires_grad


def test_codebook_with_one_code_passes_a_constant():
    from anytask.methods.control.codebook import Codebook

    cb = Codebook(20, k=1, code_dim=3, dropout=0.0).eval()
    out = cb(torch.randn(6, 20))
    assert torch.allclose(out, out[:1].expand(6, -1))  # the policy cannot see the view through one code


@needs_minatar
def test_object_nav_passes_gymnasium_checks_and_its_expert_is_optimal():
    from gymnasium.utils.env_checker import check_env

    from anytask.data.envs import make_env

    env = make_env("anytask/ObjectNav-v0")
    check_env(env.unwrapped, skip_render_check=True)
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        assert obs["view"].shape == (15, 15, 3) and 0 <= obs["goal"] < 5
        steps = 0
        while True:
            obs, r, term, trunc, info2 = env.step(env.unwrapped.expert_action())
            steps += 1
            if term or trunc:
                break
        assert info2["success"] and steps == info["shortest"]
    with pytest.raises(AnytaskError, match="outside ObjectNav's actions"):
        env.unwrapped.step(7)


@needs_minatar
@pytest.mark.slow
def test_nav_policy_trains_evaluates_and_round_trips(tmp_path):
    from anytask.methods.control import POLICIES

    pol = POLICIES.get("codebook")(k=16, rounds=2, episodes=8, updates=5, seed=0).fit(max_steps=15)
    assert len(pol.history_) == 2 and 0 <= pol.history_[-1]["success"] <= 1
    res = pol.evaluate(episodes=5, record=True)
    assert {"success", "spl", "sel", "perplexity"} <= set(res) and 1 <= res["perplexity"] <= 16
    assert 0 <= res["spl"] <= res["success"] and 0 <= res["sel"] <= res["success"]
    assert res["E"].shape[0] == len(res["infos"]) == len(res["episode"])
    pol.save_pretrained(tmp_path / "nav")
    back = io.load(tmp_path / "nav")
    again = back.evaluate(episodes=5)
    assert again["success"] == res["success"] and again["sel"] == res["sel"]
    with pytest.raises(AnytaskError, match="views"):
        back.evaluate(depth=3)
    with pytest.raises(AnytaskError, match="codebook="):
        POLICIES.get("codebook")(codebook="vq").fit()
