"""Distillation: smaller, faster backbones that every head, the service and ``anytask bench`` use unchanged
(``DISTILLERS``). A distiller trains on unlabelled texts and writes a student as a local model folder
(``hf:<folder>``). ``IMAGE_DISTILLERS`` hold the image variant of G2SD (a small ViT classifier taught by a masked
autoencoder); ``TASK_DISTILLERS`` G2SD's specific stage for text (a student fine-tuned on one task with the
teacher's predictions). One file per method, one import line here."""

from anytask.methods.distill.base import DISTILLERS, TASK_DISTILLERS, corpus_texts, write_student
from anytask.methods.distill import autodistil  # noqa: E402,F401
from anytask.methods.distill import layer_drop  # noqa: E402,F401
from anytask.methods.distill import rlq  # noqa: E402,F401
from anytask.methods.distill import g2sd_text  # noqa: E402,F401
from anytask.methods.distill.g2sd import IMAGE_DISTILLERS  # noqa: E402

__all__ = ["DISTILLERS", "IMAGE_DISTILLERS", "TASK_DISTILLERS", "corpus_texts", "write_student"]
