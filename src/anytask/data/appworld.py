"""A simulated phone: five apps of screens with element lists, and tasks that span two or three apps (the stand-in
for Android devices in MAPLE, card 17).

Screens are nodes of a fixed graph (Home; Contacts with one page per contact; Messages with one chat per contact;
Notes; Calendar; Settings, a distractor). Each observation is ``{"screen": description, "elements": [names]}``;
the description starts with the screen's title line and ends with a status line that changes on every step (time,
battery, a toast such as "Copied 555-0101" or "Draft: ..."), so two visits to one screen never read the same —
telling them apart is the agent's job. Actions are strings: ``"tap:<element>"``, ``"back"`` and ``"home"``; any
other string, or a tap on an element not on the screen, is an error naming the valid actions.

Faults, each drawn per step at a configurable rate: a **pop-up** ("Rate this app?": *Not now* closes it, *Rate*
opens Settings), a **dead click** (the tap does nothing), a **wrong navigation** (the tap opens another screen of
the same app). ``info`` reports every injected fault, whether the action was *accurate* (it shortened the way to
the current sub-goal's screen, did its tap, or closed a pop-up) and, at the end, ``success``.

Tasks: ``send`` (copy a contact's number, paste it in a chat, send), ``note`` (copy a number into a new note) and
``event`` (copy a number, make it a calendar event's title, then send it to someone: three apps). Each is a list
of sub-goals ``(text, where, element, expect, screen)``: on the screen whose description contains ``where``, tap
``element``; the description after the tap then contains ``expect`` (pre- and post-conditions an agent can check;
``screen`` is the world's own bookkeeping). Success is the world's effect log containing the task's effects, within
``max_steps``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError

WORLD_VERSION = "appworld-1"
NUMBERS = {"Ana": "555-0101", "Ben": "555-0102", "Chen": "555-0103", "Dara": "555-0104"}


def _graph() -> dict[str, tuple[str, str, dict[str, str]]]:
    """screen id -> (app, title, {element: target screen id or "!effect"})."""
    g = {"home": ("Home", "Home screen", {a: a.lower() for a in ("Contacts", "Messages", "Notes", "Calendar",
                                                                  "Settings")}),
         "contacts": ("Contacts", "All contacts", {**{n: f"contact:{n}" for n in NUMBERS}, "Add contact": "add"}),
         "add": ("Contacts", "New contact form", {"Cancel": "contacts"}),
         "messages": ("Messages", "Conversations", {**{n: f"chat:{n}" for n in NUMBERS},
                                                    "New message": "compose"}),
         "compose": ("Messages", "New message, choose a recipient", {"Cancel": "messages"}),
         "notes": ("Notes", "All notes", {"New note": "note", "Shopping list": "list"}),
         "note": ("Notes", "New note editor", {"Paste": "!paste", "Save note": "!save_note"}),
         "list": ("Notes", "Shopping list: milk, eggs, bread", {"Edit": "note"}),
         "calendar": ("Calendar", "Month view", {"Today": "today", "New event": "event"}),
         "today": ("Calendar", "Today: no events", {"New event": "event"}),
         "event": ("Calendar", "New event form", {"Paste title": "!paste", "Save event": "!save_event"}),
         "settings": ("Settings", "Settings", {"Wi-Fi": "wifi", "Display": "display"}),
         "wifi": ("Settings", "Wi-Fi networks", {"Home network": "wifi"}),
         "display": ("Settings", "Display brightness", {"Dark mode": "display"})}
    for n in NUMBERS:
        g[f"contact:{n}"] = ("Contacts", f"Contact card of {n}, phone {NUMBERS[n]}",
                             {"Copy number": f"!copy:{n}", "Call": f"call:{n}", "Edit": "add"})
        g[f"call:{n}"] = ("Contacts", f"Calling {n}", {"End call": f"contact:{n}"})
        g[f"chat:{n}"] = ("Messages", f"Chat with {n}", {"Paste": "!paste", "Send": f"!send:{n}",
                                                         "Attach": "compose"})
    return g


GRAPH = _graph()
POPUP = "popup"


@dataclass(frozen=True)
class Subgoal:
    text: str     # what the planner says, in words
    where: str    # pre-condition: the screen's description contains it
    element: str  # the tap that does the sub-goal
    expect: str   # post-condition: the description after the tap contains it
    screen: str   # the screen id (the world's bookkeeping; agents never read it)


@dataclass(frozen=True)
class Task:
    kind: str
    text: str
    subgoals: tuple[Subgoal, ...]
    effects: tuple[tuple[str, ...], ...]


def _copy(who: str) -> Subgoal:
    return Subgoal(f"open {who}'s contact card and copy the number", f"Contact card of {who}", "Copy number",
                   "Copied", f"contact:{who}")


def _send(to: str) -> tuple[Subgoal, ...]:
    return (Subgoal(f"paste the number into the chat with {to}", f"Chat with {to}", "Paste", "Draft:", f"chat:{to}"),
            Subgoal(f"send the message to {to}", f"Chat with {to}", "Send", "Sent", f"chat:{to}"))


def make_task(kind: str, who: str, to: str | None = None) -> Task:
    if who not in NUMBERS or (to is not None and to not in NUMBERS):
        raise AnytaskError(f"unknown contact; use {', '.join(NUMBERS)}")
    num = NUMBERS[who]
    if kind == "send":
        return Task(kind, f"Send {who}'s phone number to {to}", (_copy(who), *_send(to)), (("sent", to, num),))
    if kind == "note":
        return Task(kind, f"Save {who}'s phone number in a new note", (
            _copy(who), Subgoal("paste the number into a new note", "New note editor", "Paste", "Draft:", "note"),
            Subgoal("save the note", "New note editor", "Save note", "Saved", "note")), (("note", num),))
    if kind == "event":
        return Task(kind, f"Make a calendar event titled with {who}'s number and send the number to {to}", (
            _copy(who), Subgoal("paste the number as the title of a new calendar event", "New event form",
                                "Paste title", "Draft:", "event"),
            Subgoal("save the event", "New event form", "Save event", "Saved", "event"), *_send(to)),
            (("event", num), ("sent", to, num)))
    raise AnytaskError(f"unknown task kind {kind!r}; use send, note or event")


def all_tasks() -> list[Task]:
    """Every task of the world: 12 send, 4 note and 12 event tasks (ordered pairs of different contacts)."""
    names = list(NUMBERS)
    return ([make_task("send", a, b) for a in names for b in names if a != b]
            + [make_task("note", a) for a in names]
            + [make_task("event", a, b) for a in names for b in names if a != b])


def distances_to(target: str) -> dict[str, int]:
    """Shortest number of actions from every screen to ``target`` (taps, back, home), by BFS on the graph."""
    rev: dict[str, set[str]] = {s: set() for s in GRAPH}
    for s, (_, _, els) in GRAPH.items():
        rev["home"].add(s)  # "home" from anywhere
        for t in els.values():
            if not t.startswith("!"):
                rev[t].add(s)
    dist, queue = {target: 0}, deque([target])
    while queue:
        s = queue.popleft()
        for p in rev[s]:
            if p not in dist:
                dist[p] = dist[s] + 1
                queue.append(p)
    return dist


_DIST = {s: distances_to(s) for s in GRAPH}


class AppWorld:
    """The simulated phone (see the module docstring). ``reset(seed=, options={"task": Task})``."""

    version = WORLD_VERSION

    def __init__(self, p_popup: float = 0.05, p_dead: float = 0.05, p_wrong: float = 0.05,
                 max_steps: int = 60) -> None:
        for name, p in (("p_popup", p_popup), ("p_dead", p_dead), ("p_wrong", p_wrong)):
            if not 0 <= p < 1:
                raise AnytaskError(f"{name}={p}: a fault rate must lie in [0, 1)")
        self.p_popup, self.p_dead, self.p_wrong, self.max_steps = p_popup, p_dead, p_wrong, int(max_steps)
        self.rng = np.random.default_rng(0)
        self.task: Task | None = None

    # -- observations -------------------------------------------------------------------------------------------
    def _elements(self) -> list[str]:
        if self.popup:
            return ["Not now", "Rate"]
        return list(GRAPH[self.screen][2])

    def _observe(self) -> dict:
        app, title, _ = GRAPH[self.screen]
        title = f"{app}: {title}"
        if self.popup:  # drawn over the screen: its title is hidden, its toast still shows
            title = "Pop-up: Rate this app? Your feedback helps us improve"
        status = f"{int(self.rng.integers(8, 12))}:{int(self.rng.integers(0, 60)):02d}, battery " \
                 f"{int(self.rng.integers(20, 100))}%"
        toast = f". {self.toast}" if self.toast else ""
        draft = f". Draft: {self.draft}" if self.draft and self._compose(self.screen) else ""
        return {"screen": f"{title}{toast}{draft}. Status: {status}", "elements": self._elements()}

    def actions(self) -> list[str]:
        return [f"tap:{e}" for e in self._elements()] + ["back", "home"]

    # -- dynamics ---------------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        task = (options or {}).get("task")
        if not isinstance(task, Task):
            raise AnytaskError("reset needs options={'task': Task} (see anytask.data.appworld.all_tasks)")
        self.task, self.screen, self.history, self.popup = task, "home", [], False
        self.clipboard, self.draft, self.toast, self.effects, self.t, self.done = "", "", "", [], 0, 0
        return self._observe(), {"task": task.text}

    @staticmethod
    def _compose(screen: str) -> bool:
        return screen in ("note", "event") or screen.startswith("chat:")

    def _move(self, target: str, push: bool = True) -> None:
        if target == self.screen:
            return
        if push:
            self.history.append(self.screen)
        if self._compose(self.screen) and self.draft:
            self.draft = ""  # leaving a compose screen drops its draft (and undoes a pasted sub-goal)
            if self.done and self.task.subgoals[self.done - 1].element.startswith("Paste"):
                self.done -= 1
        self.screen = target

    def _accurate(self, action: str, goal: Subgoal) -> bool:
        """Whether the agent's choice is right, before any fault: it closes a pop-up, does the sub-goal's tap on
        its screen, or moves one step closer to the sub-goal's screen."""
        if self.popup:
            return action == "tap:Not now"
        if action.startswith("tap:"):
            target = GRAPH[self.screen][2][action[4:]]
            if target.startswith("!"):
                return self.screen == goal.screen and action[4:] == goal.element
        else:
            target = "home" if action == "home" else (self.history[-1] if self.history else self.screen)
        dist = _DIST[goal.screen]
        return dist.get(target, 99) < dist.get(self.screen, 99)

    def step(self, action: str):
        if self.task is None:
            raise AnytaskError("call reset() before step()")
        valid = self.actions()
        if action not in valid:
            raise AnytaskError(f"action {action!r} is not available on this screen; use one of {valid}")
        self.t += 1
        goal_i = self.done
        goal = self.task.subgoals[min(goal_i, len(self.task.subgoals) - 1)]
        accurate = self._accurate(action, goal)
        faults, self.toast = [], ""
        if self.popup:
            self.popup = False  # every action closes it; only "Not now" leaves the screen as it was
            if action == "tap:Rate":
                self._move("settings")
            elif action == "home":
                self._move("home")
        elif action == "home":
            self._move("home")
        elif action == "back":
            if self.history:
                self._move(self.history.pop(), push=False)
        else:
            element = action[4:]
            target = GRAPH[self.screen][2][element]
            if self.rng.random() < self.p_dead:
                faults.append("dead click")
            elif target.startswith("!"):
                on_goal = self.screen == goal.screen and element == goal.element
                took = self._effect(target[1:])
                self.done += int(on_goal and took and self.done < len(self.task.subgoals))
            elif self.rng.random() < self.p_wrong:
                app = GRAPH[self.screen][0]
                others = [s for s, v in GRAPH.items() if v[0] == app and s not in (self.screen, target)]
                faults.append("wrong navigation")
                self._move(str(self.rng.choice(others)) if others else target)
            else:
                self._move(target)
        if self.rng.random() < self.p_popup:
            self.popup = True
            faults.append("pop-up")
        success = self._done()
        truncated = not success and self.t >= self.max_steps
        info = {"faults": faults, "accurate": bool(accurate), "success": success, "subgoal": goal_i}
        if success or truncated:
            self.task = None
        return self._observe(), float(success), success, truncated, info

    def _effect(self, effect: str) -> bool:
        """Apply a tap's effect; whether it took (a paste needs a clipboard, a send or save a draft)."""
        kind, _, arg = effect.partition(":")
        if kind == "copy":
            self.clipboard = NUMBERS[arg]
            self.toast = f"Copied {self.clipboard}"
            return True
        if kind == "paste":
            self.draft = self.clipboard or self.draft
            return bool(self.clipboard)
        if not self.draft:
            return False
        self.effects.append({"send": ("sent", arg, self.draft), "save_note": ("note", self.draft),
                             "save_event": ("event", self.draft)}[kind])
        self.toast = "Sent" if kind == "send" else "Saved"
        self.draft = ""
        return True

    def _done(self) -> bool:
        need = list(self.task.effects)
        got = [tuple(e) for e in self.effects]
        i = 0
        for e in got:  # the task's effects, in order
            if i < len(need) and e == need[i]:
                i += 1
        return i == len(need)
