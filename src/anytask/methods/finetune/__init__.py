"""Fine-tuning a copy of the backbone: SetFit-style contrastive tuning of its top layers (a head), and for task vectors: standard or linearised (tangent), with
AdamW or a sharpness-aware optimiser (SAM, ASAM, TRAM). The backbone itself is never written."""

from anytask.methods.finetune.contrastive import ContrastiveHead
from anytask.methods.finetune.finetune import FINETUNING, finetune, predict
from anytask.methods.finetune.optim import MODES, OPTIMIZERS, SharpnessAware, kl_divergence

__all__ = ["ContrastiveHead", "FINETUNING", "MODES", "OPTIMIZERS", "SharpnessAware", "finetune", "kl_divergence", "predict"]
