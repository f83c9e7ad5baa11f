"""Distillation: smaller, faster backbones that every head, the service and ``anytask bench`` use unchanged
(``DISTILLERS``). A distiller trains on unlabelled texts and writes a student as a local model folder
(``hf:<folder>``). One file per method, one import line here."""

from anytask.methods.distill.base import DISTILLERS, corpus_texts, write_student
from anytask.methods.distill import autodistil  # noqa: E402,F401
from anytask.methods.distill import rlq  # noqa: E402,F401

__all__ = ["DISTILLERS", "corpus_texts", "write_student"]
