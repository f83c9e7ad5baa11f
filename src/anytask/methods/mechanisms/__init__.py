"""Mechanisms: how one network serves many tasks. Prompt tasks for circuit analyses (``PROMPT_TASKS``) and the
analyses (``ANALYSES``) over the hook API in ``anytask.backbones.patching``. One file per method, one import
line here."""

from anytask.methods.mechanisms.base import ANALYSES, PROMPT_TASKS, PromptSet, make_prompts
from anytask.methods.mechanisms import prompts  # noqa: E402,F401
from anytask.methods.mechanisms import circuits  # noqa: E402,F401
from anytask.methods.mechanisms import difficulty  # noqa: E402,F401
from anytask.methods.mechanisms import bottleneck  # noqa: E402,F401
from anytask.methods.mechanisms import hinting  # noqa: E402,F401
from anytask.methods.mechanisms import tensor_brain  # noqa: E402,F401

__all__ = ["ANALYSES", "PROMPT_TASKS", "PromptSet", "make_prompts"]
