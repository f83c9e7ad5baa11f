"""Ag2Manip (card 08) and its time-contrastive encoder: the masked reward ignores the body, the reward peaks at the
goal, proxy actions reach the robot by retargeting, bad input, save / load."""

from __future__ import annotations

import numpy as np
import pytest

from anytask.core import io
from anytask.core.errors import AnytaskError

pytest.importorskip("gymnasium", reason="Ag2Manip runs on the push world (control extra: gymnasium)")


@pytest.fixture(scope="module")
def encoder():
    from anytask.data.pushworld import push_videos
    from anytask.methods.control.time_contrastive import TimeContrastive

    data, _ = push_videos(20, body="L", obs="masked", seed=0)
    return TimeContrastive(objective="vip", width=16, steps=100, batch_size=32, seed=0).fit(data)


def test_vip_needs_videos_and_learns_a_goal_value(encoder):
    from anytask.data.envs import Transitions
    from anytask.data.pushworld import push_videos
    from anytask.methods.control.time_contrastive import TimeContrastive

    assert encoder.history_[-1]["loss"] < encoder.history_[0]["loss"]
    data, _ = push_videos(3, body="disc", obs="masked", seed=2)
    plain = Transitions(data.env_id, data.obs, data.action, data.reward, data.next_obs, data.terminal,
                        data.episode_returns, 0)
    with pytest.raises(AnytaskError, match="episode and step"):
        TimeContrastive(objective="vip", steps=2).fit(plain)
    with pytest.raises(AnytaskError, match="objective='tcn'"):
        TimeContrastive(objective="tcn").fit(data)
    assert TimeContrastive(objective="infonce", width=8, steps=3, batch_size=8).fit(plain).embed(data.obs[:2]).shape \
        == (2, 8)


def test_the_masked_reward_is_the_same_for_every_body_and_best_at_the_goal(encoder):
    from anytask.data.pushworld import PushSim, push_videos, render_states
    from anytask.methods.control.time_contrastive import goal_reward

    _, states = push_videos(4, body="L", obs="masked", seed=1)
    sim = PushSim(len(states))
    sim.set(states[:, 0:2], states[:, 2:4], states[:, 4:6])
    goals = sim.goal_frames()
    r = {b: goal_reward(encoder, render_states(states, b, masked=True), goals) for b in ("L", "disc", "arm")}
    np.testing.assert_array_equal(r["L"], r["arm"])
    np.testing.assert_array_equal(r["L"], r["disc"])
    at_goal = goal_reward(encoder, goals, goals)
    assert np.all(at_goal == 0) and np.all(r["L"] <= 0)  # maximal (0) exactly at the goal frame


def test_proxy_policy_with_the_true_reward_pushes_with_the_arm(tmp_path):
    from anytask.methods.control.ag2manip import Ag2Manip

    pol = Ag2Manip(action="proxy", iterations=20, population=16, elite=4, episodes=4, seed=0)
    pol.fit("anytask/Push-v0", body="arm", max_steps=60)
    res = pol.evaluate(episodes=40)
    assert res["success"] >= 0.5  # the oracle reward and the proxy's primitive make this easy: a sanity floor
    states = np.random.default_rng(0).uniform(0.2, 0.8, (5, 8))
    io.save(pol, tmp_path / "ag2")
    np.testing.assert_allclose(io.load(tmp_path / "ag2").predict(states), pol.predict(states), atol=1e-6)


def test_visual_reward_trains_and_bad_input_is_clear(encoder):
    from anytask.methods.control.ag2manip import Ag2Manip

    pol = Ag2Manip(encoder=encoder, action="native", iterations=2, population=4, elite=2, episodes=2,
                   seed=0).fit("anytask/Push-v0", body="arm", max_steps=20)
    assert len(pol.history_) == 2 and 0 <= pol.evaluate(episodes=5)["success"] <= 1
    with pytest.raises(AnytaskError, match="8 numbers"):
        pol.predict(np.zeros((2, 6)))
    with pytest.raises(AnytaskError, match="view="):
        Ag2Manip(view="depth").fit()
    with pytest.raises(AnytaskError, match="elite"):
        Ag2Manip(elite=9, population=4).fit()
    with pytest.raises(AnytaskError, match="Push-v0"):
        Ag2Manip().fit("MinAtar/Breakout-v1")
