"""The two prompt sets of circuit component reuse (Merullo, Eickhoff & Pavlick 2023,
https://arxiv.org/abs/2310.08744, card 29), re-implemented from the card's description.

* ``ioi``: indirect object identification (Wang et al. 2022) — "When Mary and John went to the store,
  John gave a drink to" → " Mary"; the corruption swaps the second subject mention for the indirect
  object ("..., Mary gave a drink to"), so the answer becomes " John" (the card's S2 ↔ IO flip).
* ``colored_objects``: a one-shot question about the colour of one of three objects on a surface; the
  corruption asks about another object of the same scene (the card's "mindiff" prompts).

Names, colours and objects are single tokens for SmolLM2's tokenizer (checked again at analysis time:
a multi-token answer is skipped and counted, never scored by its first token).
"""

from __future__ import annotations

import numpy as np

from anytask.methods.mechanisms.base import PROMPT_TASKS, PromptSet

NAMES = ("Mary", "John", "Tom", "James", "Anna", "Sarah", "David", "Michael", "Emma", "Lisa", "Paul", "Mark", "Kate",
         "Laura", "Peter", "Susan", "Alice", "Bob", "Chris", "Daniel", "Rachel", "Robert", "Steven", "Jessica",
         "Linda", "Brian", "Kevin", "Jason", "Amy", "Nancy", "Karen", "Frank", "George", "Helen", "Henry", "Jack",
         "Jane", "Julia", "Justin", "Kelly", "Lucy", "Martin", "Mike", "Nick", "Oliver", "Rose", "Sam", "Simon",
         "Thomas", "Tim")
PLACES = ("store", "park", "school", "station", "office", "garden", "market", "restaurant", "beach", "hospital")
THINGS = ("drink", "book", "ring", "bag", "ball", "letter", "gift", "key", "flower", "phone")
IOI_TEMPLATES = (
    "When {A} and {B} went to the {place}, {S} gave a {thing} to",
    "After {A} and {B} arrived at the {place}, {S} handed a {thing} to",
    "Then, {A} and {B} had a long day at the {place}. {S} gave a {thing} to",
    "While {A} and {B} were working at the {place}, {S} passed a {thing} to",
)
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "brown", "black")
OBJECTS = ("textbook", "puzzle", "cup", "pencil", "necklace", "lighter", "book", "pen", "ball", "notebook", "plate",
           "jug", "sunglasses", "hat", "lamp", "clock", "bottle")
SURFACES = ("table", "desk", "floor")
OPENERS = ("there is", "you see", "I see")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@PROMPT_TASKS.register("ioi", reference="Wang et al. 2022, https://arxiv.org/abs/2211.00593 (as used by Merullo et al. "
                       "2023, https://arxiv.org/abs/2310.08744)", summary="indirect object identification, with the "
                       "S2 <-> IO corruption", input="names")
def ioi(n: int, seed: int = 0) -> PromptSet:
    rng = np.random.default_rng(seed)
    clean, corrupt, answer, alternative = [], [], [], []
    for _ in range(n):
        a, b = rng.choice(NAMES, size=2, replace=False)
        io, s = (a, b) if rng.random() < 0.5 else (b, a)  # the indirect object comes first or second
        template = IOI_TEMPLATES[rng.integers(len(IOI_TEMPLATES))]
        place, thing = PLACES[rng.integers(len(PLACES))], THINGS[rng.integers(len(THINGS))]
        clean.append(template.format(A=a, B=b, S=s, place=place, thing=thing))
        corrupt.append(template.format(A=a, B=b, S=io, place=place, thing=thing))
        answer.append(f" {io}")
        alternative.append(f" {s}")
    return PromptSet("ioi", tuple(clean), tuple(corrupt), tuple(answer), tuple(alternative))


def _scene(rng) -> tuple[str, list[str], list[str]]:
    objects = list(rng.choice(OBJECTS, size=3, replace=False))
    colors = list(rng.choice(COLORS, size=3, replace=False))
    surface, opener = SURFACES[rng.integers(len(SURFACES))], OPENERS[rng.integers(len(OPENERS))]
    items = [f"{_article(c)} {c} {o}" for c, o in zip(colors, objects)]
    return f"On the {surface}, {opener} {items[0]}, {items[1]}, and {items[2]}.", objects, colors


@PROMPT_TASKS.register("colored_objects", reference="Merullo et al. 2023, https://arxiv.org/abs/2310.08744 (BIG-bench "
                       "reasoning_about_colored_objects, simplified)", summary="one-shot colour questions, with the "
                       "ask-about-another-object corruption", input="names")
def colored_objects(n: int, seed: int = 0) -> PromptSet:
    rng = np.random.default_rng(seed)
    clean, corrupt, answer, alternative = [], [], [], []
    for _ in range(n):
        shot, shot_objects, shot_colors = _scene(rng)
        k = rng.integers(3)
        demo = f"Q: {shot} What color is the {shot_objects[k]}?\nA: {shot_colors[k].capitalize()}\n"
        scene, objects, colors = _scene(rng)
        i, j = rng.choice(3, size=2, replace=False)
        clean.append(f"{demo}Q: {scene} What color is the {objects[i]}?\nA:")
        corrupt.append(f"{demo}Q: {scene} What color is the {objects[j]}?\nA:")
        answer.append(f" {colors[i].capitalize()}")
        alternative.append(f" {colors[j].capitalize()}")
    return PromptSet("colored_objects", tuple(clean), tuple(corrupt), tuple(answer), tuple(alternative),
                     candidates=tuple(f" {c.capitalize()}" for c in COLORS))
