"""A toy world of named entities and scenes, for semantic decoding (the Tensor Brain, card 37).

Entities have a class (person, cup, box, ball, book, lamp), a colour and a size, and persistent relations (a
person owns objects, some objects are part of others). A *scene* (an episode) shows 3-6 entities, drawn with
Zipf-like popularity, from left to right. Its facts are subject-predicate-object triples over one index space:

* attributes ``(e, is_a, class)``, ``(e, colour, c)``, ``(e, size, s)`` for every entity shown;
* ``(e_i, left_of, e_{i+1})`` between neighbours;
* ``(p, owns, o)`` and ``(a, part_of, b)`` when both are shown.

Each scene is also text, one sentence per entity ("Tomar is a small red cup.") and per relation ("Tomar is left of
Kelu."), so a frozen text encoder can perceive it. Indices: entities first, then classes, colours, sizes (the
*concepts*), all of which can be subjects or objects; predicates have their own index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anytask.core.errors import AnytaskError

CLASSES = ("person", "cup", "box", "ball", "book", "lamp")
COLOURS = ("red", "green", "blue", "yellow", "black")
SIZES = ("small", "medium", "large")
PREDICATES = ("is_a", "colour", "size", "left_of", "owns", "part_of")
_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "so", "na", "vi", "po", "de", "lu", "ze", "ba", "fi", "go", "ha")


@dataclass
class World:
    names: list[str]  # entity names; index i is entity i
    kinds: list[tuple[int, int, int]]  # (class, colour, size) per entity
    owns: list[tuple[int, int]]
    part_of: list[tuple[int, int]]
    scenes: list[list[int]] = field(default_factory=list)  # entity ids, left to right
    popularity: np.ndarray | None = None

    @property
    def n_entities(self) -> int:
        return len(self.names)

    @property
    def concepts(self) -> list[str]:
        return [*self.names, *CLASSES, *COLOURS, *SIZES]

    def concept(self, kind: str, i: int) -> int:
        offset = {"class": 0, "colour": len(CLASSES), "size": len(CLASSES) + len(COLOURS)}[kind]
        return self.n_entities + offset + i

    def entity_triples(self, e: int) -> list[tuple[int, int, int]]:
        c, col, s = self.kinds[e]
        return [(e, 0, self.concept("class", c)), (e, 1, self.concept("colour", col)), (e, 2, self.concept("size", s))]

    def triples(self, scene: list[int]) -> list[tuple[int, int, int]]:
        out = [t for e in scene for t in self.entity_triples(e)]
        out += [(a, 3, b) for a, b in zip(scene, scene[1:])]
        shown = set(scene)
        out += [(a, 4, b) for a, b in self.owns if a in shown and b in shown]
        out += [(a, 5, b) for a, b in self.part_of if a in shown and b in shown]
        return out

    def entity_sentence(self, e: int, template: int = 0) -> str:
        return describe(self.names[e], self.kinds[e], template)

    def sentences(self, scene: list[int]) -> list[str]:
        out = [self.entity_sentence(e) for e in scene]
        words = {3: "is left of", 4: "owns", 5: "is part of"}
        out += [f"{self.names[a].capitalize()} {words[p]} {self.names[b].capitalize()}."
                for a, p, b in self.triples(scene) if p >= 3]
        return out


TEMPLATES = ("{N} is a {size} {colour} {cls}.", "The {size} {colour} {cls} is called {N}.",
             "{N}: a {colour} {cls}, {size}.")


def describe(name: str, kind: tuple[int, int, int], template: int = 0) -> str:
    """One entity's sentence (``template`` picks one of ``TEMPLATES``)."""
    c, col, s = kind
    return TEMPLATES[template].format(N=name.capitalize(), size=SIZES[s], colour=COLOURS[col], cls=CLASSES[c])


def _names(n: int, rng, taken=()) -> list[str]:
    names, seen = [], set(taken)
    while len(names) < n:
        w = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
        if w not in seen:
            seen.add(w)
            names.append(w)
    return names


def toy_world(n_entities: int = 50, n_scenes: int = 600, *, min_shown: int = 3, max_shown: int = 6,
              seed: int = 0) -> World:
    """A random world and ``n_scenes`` scenes of ``min_shown``..``max_shown`` entities each."""
    if n_entities < max_shown or not 2 <= min_shown <= max_shown:
        raise AnytaskError(f"need 2 <= min_shown <= max_shown <= n_entities (got {min_shown}, {max_shown}, "
                           f"{n_entities})")
    rng = np.random.default_rng(seed)
    kinds = [(int(rng.integers(len(CLASSES))), int(rng.integers(len(COLOURS))), int(rng.integers(len(SIZES))))
             for _ in range(n_entities)]
    people = [e for e, k in enumerate(kinds) if k[0] == 0]
    things = [e for e, k in enumerate(kinds) if k[0] != 0]
    owns = [(int(rng.choice(people)), t) for t in things if people and rng.random() < 0.5]
    part_of = [(a, int(rng.choice([b for b in things if b != a]))) for a in things if rng.random() < 0.2]
    popularity = 1.0 / np.arange(1, n_entities + 1) ** 0.7
    popularity = rng.permutation(popularity / popularity.sum())
    world = World(_names(n_entities, rng), kinds, owns, part_of, popularity=popularity)
    world.scenes = new_scenes(world, n_scenes, rng, min_shown, max_shown)
    return world


def new_scenes(world: World, n: int, rng, min_shown: int = 3, max_shown: int = 6) -> list[list[int]]:
    return [rng.choice(world.n_entities, size=int(rng.integers(min_shown, max_shown + 1)), replace=False,
                       p=world.popularity).tolist() for _ in range(n)]


def novel_entities(world: World, n: int, seed: int = 0) -> list[tuple[str, tuple[int, int, int]]]:
    """``n`` entities the world does not have: new names with a random class, colour and size."""
    rng = np.random.default_rng(10_000 + seed)
    return [(name, (int(rng.integers(len(CLASSES))), int(rng.integers(len(COLOURS))), int(rng.integers(len(SIZES)))))
            for name in _names(n, rng, taken=world.names)]
