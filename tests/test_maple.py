"""MAPLE (card 17's test-sized checks) and the simulated phone it acts in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anytask.core import io
from anytask.core.errors import AnytaskError
from anytask.data.appworld import GRAPH, NUMBERS, AppWorld, all_tasks, make_task
from anytask.methods.agents import AGENTS, FSM, MapleAgent


def _words(text):
    return text.lower().replace(".", " ").replace(",", " ").replace(":", " ").split()


VOCAB = sorted({w for s in GRAPH.values() for w in _words(f"{s[0]} {s[1]}")} | {"pop-up", "copied", "draft", "sent",
                                                                               "saved"})


def bag_embed(texts):
    """A deterministic stand-in for MiniLM: a bag of the world's words (status lines differ only in numbers)."""
    out = np.zeros((len(texts), len(VOCAB)), np.float32)
    for i, t in enumerate(texts):
        for w in _words(t):
            if w in VOCAB:
                out[i, VOCAB.index(w)] += 1
    return out


def agent(**kw):
    return MapleAgent(**kw).set_components(embed=bag_embed)


SCRIPT = ["tap:Contacts", "tap:Ana", "tap:Copy number", "home", "tap:Messages", "tap:Ben", "tap:Paste", "tap:Send"]


# -- the world -------------------------------------------------------------------------------------------------
def test_the_world_runs_a_task_and_checks_its_actions():
    world = AppWorld(0, 0, 0)
    obs, _ = world.reset(seed=0, options={"task": make_task("send", "Ana", "Ben")})
    assert obs["elements"] == ["Contacts", "Messages", "Notes", "Calendar", "Settings"]
    for a in SCRIPT:
        obs, r, done, _, info = world.step(a)
        assert info["accurate"], a  # the scripted route is a shortest one
    assert done and r == 1 and "Sent" in obs["screen"]
    world.reset(options={"task": make_task("send", "Ana", "Ben")})
    with pytest.raises(AnytaskError, match="not available on this screen"):
        world.step("tap:Send")
    with pytest.raises(AnytaskError, match="options="):
        world.reset()
    with pytest.raises(AnytaskError, match="fault rate"):
        AppWorld(p_popup=1.5)
    assert len(all_tasks()) == 28 and all(t.subgoals for t in all_tasks())


def test_pasting_into_the_wrong_chat_fails_and_leaving_drops_the_draft():
    world = AppWorld(0, 0, 0)
    world.reset(options={"task": make_task("send", "Ana", "Ben")})
    for a in ["tap:Contacts", "tap:Ana", "tap:Copy number", "home", "tap:Messages", "tap:Chen", "tap:Paste", "back",
              "tap:Ben", "tap:Send"]:
        obs, r, done, _, _ = world.step(a)
    assert not done and "Sent" not in obs["screen"]  # the draft stayed in Chen's chat and was dropped on leaving


def test_faults_are_injected_and_reported():
    world = AppWorld(p_popup=0.3, p_dead=0.3, p_wrong=0.3)
    world.reset(seed=1, options={"task": make_task("note", "Dara")})
    rng, seen = np.random.default_rng(0), set()
    for _ in range(60):
        obs, *_, info = world.step(str(rng.choice(world.actions())))
        seen.update(info["faults"])
        if world.task is None:
            world.reset(options={"task": make_task("note", "Dara")})
    assert seen == {"pop-up", "dead click", "wrong navigation"}


# -- the FSM ---------------------------------------------------------------------------------------------------
def test_fsm_grows_incrementally_and_merges_revisits():
    fsm = FSM(bag_embed, threshold=0.9)
    world = AppWorld(0, 0, 0)
    obs, _ = world.reset(seed=0, options={"task": make_task("send", "Ana", "Ben")})
    ids = [fsm.add(obs)]
    for a in ["tap:Contacts", "tap:Ana", "back", "back", "tap:Contacts"]:
        obs, *_ = world.step(a)
        ids.append(fsm.add(obs))
        fsm.add_transition(ids[-2], a, ids[-1])
    assert ids == [0, 1, 2, 1, 0, 1] and len(fsm) == 3  # status lines differ; the states merge
    assert fsm.path(0, lambda s: s == 2) == ["tap:Contacts", "tap:Ana"]
    assert fsm.path(2, lambda s: s == 2) == [] and fsm.path(0, lambda s: False) is None


def test_fsm_json_round_trip_is_identical_and_refuses_another_world(tmp_path):
    ag = agent(seed=0).fit(all_tasks()[:3])
    path = ag.memory_.save(tmp_path / "fsm.json")
    again = FSM.load(path, bag_embed)
    assert again.to_dict() == ag.memory_.to_dict()
    np.testing.assert_array_equal(again.vectors, ag.memory_.vectors)
    d = json.loads(path.read_text())
    d["world"] = "appworld-0"
    path.write_text(json.dumps(d))
    with pytest.raises(AnytaskError, match="built in world 'appworld-0'"):
        FSM.load(path, bag_embed)
    path.write_text("{not json")
    with pytest.raises(AnytaskError, match="cannot read the FSM"):
        FSM.load(path, bag_embed)


# -- the agent -------------------------------------------------------------------------------------------------
def test_failing_post_condition_retries_and_unexpected_screen_rolls_back():
    ag = agent(p_popup=0, p_dead=0.2, p_wrong=0.2, seed=0).fit(all_tasks()[:6])
    rec = [ag.run(t, seed=s, memory=ag.memory_) for s, t in enumerate(all_tasks()[6:12])]
    assert sum(r["retries"] for r in rec) > 0 and sum(r["rollbacks"] for r in rec) > 0
    assert np.mean([r["success"] for r in rec]) >= 0.5


def test_recovery_uses_known_transitions_before_blind_back():
    ag = agent(p_popup=0, p_dead=0, p_wrong=0, seed=0).fit([make_task("send", "Ana", "Ben")])
    mem = ag.memory_
    home = mem.add({"screen": "Home: Home screen. Status: 9:00, battery 50%", "elements": list(GRAPH["home"][2])})
    card = next(i for i, d in enumerate(mem.descriptions) if "Contact card of Ana" in d)
    assert mem.path(card, lambda s: s == home)[0] in ("home", "back")
    assert mem.path(home, lambda s: s == card) == ["tap:Contacts", "tap:Ana"]


def test_knowledge_makes_the_second_run_shorter_and_ablations_are_parameters(tmp_path):
    task = make_task("event", "Chen", "Dara")
    ag = agent(p_popup=0, p_dead=0, p_wrong=0, seed=0).fit([task])
    first = ag.history_[0]
    second = ag.run(task, seed=1, memory=ag.memory_)
    assert first["success"] and second["success"] and second["steps"] < first["steps"]
    assert second["action_accuracy"] == 1.0
    res = agent(fsm=False, seed=0).fit(all_tasks()[:2]).evaluate(all_tasks()[2:4])
    assert res["states"] == 0 and 0 <= res["success"] <= 1
    cold = agent(persist=False, p_popup=0, p_dead=0, p_wrong=0, seed=0).fit([task, task])
    assert cold.history_[1]["steps"] >= second["steps"]
    io.save(ag, tmp_path / "maple")
    loaded = io.load(tmp_path / "maple").set_components(embed=bag_embed)
    assert loaded.memory_.to_dict() == ag.memory_.to_dict()
    assert loaded.run(task, seed=1, memory=loaded.memory_)["steps"] == second["steps"]
    with pytest.raises(AnytaskError, match="list of appworld Tasks"):
        agent().fit([])


def test_an_agent_saved_before_fitting_loads_and_builds_its_fsm(tmp_path):
    io.save(agent(seed=0), tmp_path / "unfitted")
    loaded = io.load(tmp_path / "unfitted").set_components(embed=bag_embed)
    assert loaded.evaluate([make_task("note", "Ana")])["states"] > 0  # an FSM agent, not a reactive one


def test_registered_with_its_paper():
    entry = AGENTS.entry("maple")
    assert "2505.23596" in entry.reference and entry.caps.saveable
    assert set(NUMBERS) == {"Ana", "Ben", "Chen", "Dara"}
