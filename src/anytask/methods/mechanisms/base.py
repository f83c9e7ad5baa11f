"""Mechanisms: how one network serves many tasks. ``PROMPT_TASKS`` holds prompt-set generators for circuit
analyses (minimal clean / corrupted pairs with an answer and an alternative); ``ANALYSES`` the analyses.
The hooks they use live in ``anytask.backbones.patching`` (only backbones touch model internals)."""

from __future__ import annotations

from dataclasses import dataclass

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

PROMPT_TASKS: Registry = Registry("prompt task", family="mechanisms")
ANALYSES: Registry = Registry("analysis", family="mechanisms")


@dataclass(frozen=True)
class PromptSet:
    """Minimal pairs: ``clean[i]`` is answered by ``answer[i]``; ``corrupt[i]`` differs from it in one place and
    is answered by ``alternative[i]`` (the metric is the logit difference answer - alternative)."""

    task: str
    clean: tuple[str, ...]
    corrupt: tuple[str, ...]
    answer: tuple[str, ...]
    alternative: tuple[str, ...]
    candidates: tuple[str, ...] = ()  # the answer space accuracy is measured over (e.g. the 8 colours)

    def __post_init__(self) -> None:
        n = len(self.clean)
        if not n or any(len(x) != n for x in (self.corrupt, self.answer, self.alternative)):
            raise AnytaskError(f"{self.task}: clean, corrupt, answer and alternative must be equally long and "
                               "non-empty")
        if any(a == b for a, b in zip(self.answer, self.alternative)):
            raise AnytaskError(f"{self.task}: an answer equals its alternative; the logit difference would be 0")

    def __len__(self) -> int:
        return len(self.clean)

    def subset(self, index) -> "PromptSet":
        pick = lambda xs: tuple(xs[i] for i in index)  # noqa: E731
        return PromptSet(self.task, pick(self.clean), pick(self.corrupt), pick(self.answer), pick(self.alternative),
                         self.candidates)


def make_prompts(name: str, n: int, seed: int = 0) -> PromptSet:
    if not isinstance(n, int) or n < 1:
        raise AnytaskError(f"n={n!r}: ask for at least one prompt")
    return PROMPT_TASKS.get(name)(n, seed)
