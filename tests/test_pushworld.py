"""The push world (``anytask/Push-v0``): Gymnasium's checks, one physics for every body, the agent mask, inverse
kinematics and retargeting, the scripted demonstrator."""

from __future__ import annotations

import numpy as np
import pytest

from anytask.core.errors import AnytaskError
from anytask.data.pushworld import (BODIES, OBS_KINDS, R_GOAL, PushSim, forward_kinematics, inverse_kinematics,
                                    retarget, scripted_push)

pytest.importorskip("gymnasium", reason="the push world's Gymnasium class needs the control extra (gymnasium)")


@pytest.mark.parametrize("body", BODIES)
def test_push_passes_gymnasium_checks(body):
    from gymnasium.utils.env_checker import check_env

    from anytask.data.envs import make_env

    for obs in OBS_KINDS:
        env = make_env("anytask/Push-v0", body=body, obs=obs)
        check_env(env.unwrapped, skip_render_check=True)
        o, info = env.reset(seed=0)
        assert o.shape == env.observation_space.shape and info["distance"] >= 0.25
    with pytest.raises(AnytaskError, match="two finite numbers"):
        env.step(np.array([np.nan, 0.0]))


def test_bad_options_are_clear_errors():
    from anytask.data.envs import make_env

    with pytest.raises(AnytaskError, match="body 'tentacle'"):
        make_env("anytask/Push-v0", body="tentacle")
    with pytest.raises(AnytaskError, match="obs 'depth'"):
        make_env("anytask/Push-v0", obs="depth")


def test_the_scripted_pusher_succeeds_with_every_body():
    for body in ("disc", "arm"):
        sim = PushSim(100, body)
        sim.reset(np.random.default_rng(0))
        while not sim.done.all():
            a = scripted_push(sim)
            sim.step(retarget(sim.theta, a) if body == "arm" else a)
        assert (sim.distance() < R_GOAL).mean() >= 0.95


def test_same_tip_path_gives_the_same_object_path_for_every_body():
    rng = np.random.default_rng(1)
    disc, arm = PushSim(20, "disc"), PushSim(20, "arm")
    disc.reset(rng)
    arm.set(disc.tip, disc.obj, disc.goal)
    np.testing.assert_allclose(arm.tip, disc.tip, atol=1e-9)
    for _ in range(40):  # drive the arm by retargeting, then move the disc to wherever the arm's tip went
        a = scripted_push(disc)
        arm.step(retarget(arm.theta, a))
        disc.step((arm.tip - disc.tip) / 0.04)
        np.testing.assert_allclose(disc.tip, arm.tip, atol=1e-6)
        np.testing.assert_allclose(disc.obj, arm.obj, atol=1e-6)


def test_retargeting_follows_the_proxy_path():
    rng = np.random.default_rng(2)
    sim = PushSim(50, "arm")
    sim.reset(rng)
    sim.obj[:] = 5.0  # out of the way: free motion
    for _ in range(10):
        a = rng.uniform(-1, 1, (50, 2))
        want = sim.tip + 0.04 * a
        q = retarget(sim.theta, a)
        sim.step(q)
        free = ((want > 0) & (want < 1)).all(1) & (np.abs(q).max(1) < 1 - 1e-9)  # no joint-speed limit hit
        assert free.mean() > 0.8
        np.testing.assert_allclose(sim.tip[free], want[free], atol=1e-9)


def test_inverse_kinematics_inverts_forward_kinematics():
    pts = np.random.default_rng(3).uniform(0.05, 0.95, (200, 2))
    np.testing.assert_allclose(forward_kinematics(inverse_kinematics(pts))[1], pts, atol=1e-9)


@pytest.mark.parametrize("body", BODIES)
def test_the_mask_removes_exactly_the_agent_pixels(body):
    sim = PushSim(16, body)
    sim.reset(np.random.default_rng(4))
    frame, mask = sim.render()
    masked, _ = sim.render(masked=True)
    assert mask.any(axis=(1, 2)).all()
    assert (frame[mask] != 0).any(-1).all() and (masked[mask] == 0).all()
    np.testing.assert_array_equal(frame[~mask], masked[~mask])
    other = "L" if body != "L" else "disc"  # another body, same scene: the masked views are identical
    np.testing.assert_array_equal(sim.render(body=other, masked=True)[0], masked)
