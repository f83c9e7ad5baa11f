"""Fine-tuning a copy of the backbone for task vectors: standard or linearised (tangent), with
AdamW or a sharpness-aware optimiser (SAM, ASAM, TRAM). The backbone itself is never written."""

from anytask.methods.finetune.finetune import FINETUNING, finetune, predict
from anytask.methods.finetune.optim import MODES, OPTIMIZERS, SharpnessAware, kl_divergence

__all__ = ["FINETUNING", "MODES", "OPTIMIZERS", "SharpnessAware", "finetune", "kl_divergence", "predict"]
