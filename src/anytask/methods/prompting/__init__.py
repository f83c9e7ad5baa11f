"""Prompting a frozen encoder: deep prompt tuning, plain or self-regulating (PromptSRC)."""

from anytask.methods.prompting.prompt_tuning import PromptTuning

__all__ = ["PromptTuning"]
