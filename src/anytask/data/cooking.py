"""Mini-CookingWorld: a small deterministic text world for autotelic agents (the stand-in for CookingWorld in LMA3,
card 06).

Four rooms (kitchen, pantry, garden, dining room; the kitchen joins the other three), foods with states (where
they are, cut, cooked, eaten), containers that open and close (fridge, cupboard, basket), a knife, a stove and a
table. Commands (verbs: go, take, drop, open, close, put ... in, put ... on, cut, cook, eat, look, inventory,
wait): ``valid_actions()`` lists the ones that apply now; any other string is an error naming them. The world
starts in the same state every episode, so a sequence of commands replays exactly.

``achieved(before, after)`` lists the templated goals a state change achieved ("take the apple", "cut the carrot",
"put the tomato in the fridge", "go to the garden", ...): what a rule-based relabeler reports. ``holds(goal,
states)`` checks a goal over a trajectory of states, including compositions ("A then B": B after A; "A and B":
both) — the rule-based reward function.
"""

from __future__ import annotations

import copy
import re

from anytask.core.errors import AnytaskError

ROOMS = ("kitchen", "pantry", "garden", "dining room")
DOORS = {"kitchen": ("pantry", "garden", "dining room"), "pantry": ("kitchen",), "garden": ("kitchen",),
         "dining room": ("kitchen",)}
FOODS = {"apple": "garden", "carrot": "garden", "potato": "pantry", "bread": "pantry", "tomato": "fridge",
         "egg": "fridge"}
CONTAINERS = {"fridge": "kitchen", "cupboard": "pantry", "basket": "garden"}


def initial_state() -> dict:
    return {"room": "kitchen", "inventory": [], "knife": "kitchen",
            "food": {f: {"at": at, "cut": False, "cooked": False, "eaten": False} for f, at in FOODS.items()},
            "open": {c: False for c in CONTAINERS}}


def _where(at: str) -> str | None:
    """The room an item or container place is in (None for the inventory or an eaten food)."""
    if at in ROOMS:
        return at
    if at in CONTAINERS:
        return CONTAINERS[at]
    if at == "table":
        return "dining room"
    return None


def _visible(state: dict, food: str) -> bool:
    f = state["food"][food]
    if f["eaten"] or f["at"] == "inventory":
        return False
    if f["at"] in CONTAINERS and not state["open"][f["at"]]:
        return False
    return _where(f["at"]) == state["room"]


class CookingWorld:
    """``reset() -> (text, info)``; ``step(command) -> (text, 0.0, False, False, info)``: the world has no reward
    of its own (goals and rewards are the agent's), ``info["state"]`` is a copy of the state."""

    def __init__(self) -> None:
        self.state: dict | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.state = initial_state()
        return self.describe(), {"state": copy.deepcopy(self.state)}

    def describe(self) -> str:
        s = self.state
        here = [f for f in FOODS if _visible(s, f)]
        boxes = [f"{c} ({'open' if s['open'][c] else 'closed'})" for c, r in CONTAINERS.items() if r == s["room"]]
        extra = (["a knife"] if s["knife"] == s["room"] else []) + (["a stove"] if s["room"] == "kitchen" else []) \
            + (["a table"] if s["room"] == "dining room" else [])
        return (f"You are in the {s['room']}. You see: {', '.join(here + boxes + extra) or 'nothing'}. "
                f"Exits: {', '.join(DOORS[s['room']])}. You carry: {', '.join(s['inventory']) or 'nothing'}.")

    def valid_actions(self) -> list[str]:
        s = self.state
        acts = [f"go to the {r}" for r in DOORS[s["room"]]]
        acts += [f"take the {f}" for f in FOODS if _visible(s, f)]
        if s["knife"] == s["room"]:
            acts.append("take the knife")
        for c, r in CONTAINERS.items():
            if r == s["room"]:
                acts.append(f"{'close' if s['open'][c] else 'open'} the {c}")
        for f in s["inventory"]:
            if f == "knife":
                acts.append("drop the knife")
                continue
            food = s["food"][f]
            acts += [f"drop the {f}", f"eat the {f}"]
            if "knife" in s["inventory"] and not food["cut"]:
                acts.append(f"cut the {f}")
            if s["room"] == "kitchen" and not food["cooked"]:
                acts.append(f"cook the {f}")
            acts += [f"put the {f} in the {c}" for c, r in CONTAINERS.items() if r == s["room"] and s["open"][c]]
            if s["room"] == "dining room":
                acts.append(f"put the {f} on the table")
        return acts + ["look", "inventory", "wait"]

    def step(self, command: str):
        if self.state is None:
            raise AnytaskError("call reset() before step()")
        valid = self.valid_actions()
        if command not in valid:
            raise AnytaskError(f"{command!r} does not apply here; valid commands: {valid}")
        s = self.state
        m = re.fullmatch(r"(\w+) the (.+?)(?: (in|on) the (.+))?", command)
        verb, obj = (m.group(1), m.group(2)) if m else (command.split()[0], command.removeprefix("go to the "))
        if verb == "go":
            s["room"] = obj
        elif verb == "take":
            s["inventory"].append(obj)
            if obj == "knife":
                s["knife"] = "inventory"
            else:
                s["food"][obj]["at"] = "inventory"
        elif verb == "drop":
            s["inventory"].remove(obj)
            if obj == "knife":
                s["knife"] = s["room"]
            else:
                s["food"][obj]["at"] = s["room"]
        elif verb in ("open", "close"):
            s["open"][obj] = verb == "open"
        elif verb == "cut":
            s["food"][obj]["cut"] = True
        elif verb == "cook":
            s["food"][obj]["cooked"] = True
        elif verb == "eat":
            s["inventory"].remove(obj)
            s["food"][obj].update(eaten=True, at="eaten")
        elif verb == "put":
            s["inventory"].remove(obj)
            s["food"][obj]["at"] = m.group(4)
        return self.describe(), 0.0, False, False, {"state": copy.deepcopy(s)}


def achieved(before: dict, after: dict) -> list[str]:
    """The atomic goals this state change achieved (the rule-based relabeler's vocabulary)."""
    out = []
    if after["room"] != before["room"]:
        out.append(f"go to the {after['room']}")
    for f in FOODS:
        b, a = before["food"][f], after["food"][f]
        if a["at"] == "inventory" and b["at"] != "inventory":
            out.append(f"take the {f}")
        for flag, verb in (("cut", "cut"), ("cooked", "cook"), ("eaten", "eat")):
            if a[flag] and not b[flag]:
                out.append(f"{verb} the {f}")
        if a["at"] != b["at"] and a["at"] in CONTAINERS:
            out.append(f"put the {f} in the {a['at']}")
        if a["at"] != b["at"] and a["at"] == "table":
            out.append(f"put the {f} on the table")
    out += [f"open the {c}" for c in CONTAINERS if after["open"][c] and not before["open"][c]]
    return out


def atomic_goals() -> list[str]:
    """Every templated atomic goal (some are impossible, e.g. eating what is already eaten is not; all parse)."""
    goals = [f"go to the {r}" for r in ROOMS]
    for f in FOODS:
        goals += [f"take the {f}", f"cut the {f}", f"cook the {f}", f"eat the {f}", f"put the {f} on the table"]
        goals += [f"put the {f} in the {c}" for c in CONTAINERS]
    return goals + [f"open the {c}" for c in CONTAINERS]


def _first(goal: str, states: list[dict], start: int = 0) -> int | None:
    """The first step t >= start (1-based over transitions) at which atomic ``goal`` was achieved."""
    for t in range(max(start, 1), len(states)):
        if goal in achieved(states[t - 1], states[t]):
            return t
    return None


def split_goal(goal: str) -> tuple[str, list[str]]:
    """("then" | "and" | "atomic", parts) of a goal string."""
    for word in (" then ", " and "):
        if word in goal:
            return word.strip(), [g.strip() for g in goal.split(word)]
    return "atomic", [goal.strip()]


def holds_at(goal: str, states: list[dict]) -> int | None:
    """The first step at which a trajectory of states (the initial one first) has achieved ``goal`` — an atomic
    goal at some step, "A then B then ..." in that order, "A and B" each at some step — or None: so
    ``states[: holds_at(goal, states) + 1]`` is its shortest achieving prefix."""
    kind, parts = split_goal(goal)
    if kind == "and":
        times = [_first(p, states) for p in parts]
        return None if None in times else max(times)
    t = 0
    for p in parts:
        t = _first(p, states, t + 1)
        if t is None:
            return None
    return t


def holds(goal: str, states: list[dict]) -> bool:
    """Whether a trajectory of states (the initial one first) achieves ``goal`` (see ``holds_at``)."""
    return holds_at(goal, states) is not None
