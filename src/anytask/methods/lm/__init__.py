"""Causal language models used task-agnostically: few-shot prompting with calibration (GPT-3, card 21),
hidden-state optimisation and conditional beam search (Yoshida 2024, card 35). The models themselves
are backbones (``anytask.backbones.causal``); this family only calls their public operations."""

from anytask.methods.lm.beam import beam_search, is_degenerate
from anytask.methods.lm.hso import optimise_cache, segment_nll
from anytask.methods.lm.prompt import CONTENT_FREE, SCORINGS, LMPromptHead, calibrate, choice_scores

__all__ = ["CONTENT_FREE", "SCORINGS", "LMPromptHead", "beam_search", "calibrate", "choice_scores", "is_degenerate",
           "optimise_cache", "segment_nll"]
