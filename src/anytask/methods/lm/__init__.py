"""Causal language models used task-agnostically: few-shot prompting with calibration (GPT-3),
hidden-state optimisation and conditional beam search (Yoshida 2024). The models themselves are
backbones (``anytask.backbones.causal``); this family only calls their public operations."""

from anytask.methods.lm.prompt import CONTENT_FREE, SCORINGS, LMPromptHead, calibrate, choice_scores

__all__ = ["CONTENT_FREE", "SCORINGS", "LMPromptHead", "calibrate", "choice_scores"]
