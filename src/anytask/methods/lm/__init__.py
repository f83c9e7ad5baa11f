"""Causal language models used task-agnostically: few-shot prompting with calibration (GPT-3, card 21),
hidden-state optimisation and conditional beam search (Yoshida 2024, card 35), instructions (card 32)
and multitask prompted fine-tuning with LoRA (BLOOMZ, card 42). The models themselves are backbones
(``anytask.backbones.causal``, ``backbones.lora``); this family only calls their public operations."""

from anytask.methods.lm.beam import beam_search, is_degenerate
from anytask.methods.lm.hso import optimise_cache, segment_nll
from anytask.methods.lm.instructions import CLUSTERS, TASKS, Instruction, answers_for
from anytask.methods.lm.mtf import multitask_finetune, template, training_rows
from anytask.methods.lm.prompt import CONTENT_FREE, SCORINGS, LMPromptHead, calibrate, choice_scores

__all__ = ["CLUSTERS", "CONTENT_FREE", "SCORINGS", "TASKS", "Instruction", "LMPromptHead", "answers_for", "beam_search",
           "calibrate", "choice_scores", "is_degenerate", "multitask_finetune", "optimise_cache", "segment_nll",
           "template", "training_rows"]
