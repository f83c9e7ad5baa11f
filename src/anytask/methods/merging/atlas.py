"""aTLAS: task vectors composed with learned, per-block coefficients (anisotropic scaling).

Zhang et al. 2024, Knowledge Composition using Task Vectors with Learned Anisotropic Scaling,
https://arxiv.org/abs/2407.02880 (card 18). The model is ``theta = theta_0 + sum_t sum_b
lambda[t, b] tau_t[b]``: one coefficient per task vector and parameter block (a block is one
parameter tensor, or a coarser group such as a whole transformer layer), learned by gradient
descent on a few labelled examples while the encoder and the task vectors stay frozen. The
same fit covers the paper's three uses through weighted objectives: multi-task addition
(several tasks, weight +1 each), negation with a control task (the task to forget with a
negative weight, whose loss is capped at chance so it cannot run away, and a control task
with weight +1), and few-shot adaptation of a new task from existing task vectors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anytask.backbones.trainable import hidden_states, label_head, load_encoder, mean_pool
from anytask.core.errors import AnytaskError
from anytask.methods.merging.methods import MERGES


def block_of(name: str, blocks: str) -> str:
    if blocks == "tensor":
        return name
    if blocks == "layer":
        m = re.match(r"(.*?layers?\.\d+)\.", name)
        return m.group(1) if m else name.split(".")[0]
    raise AnytaskError(f"unknown block partition {blocks!r}; use 'tensor' or 'layer'")


class ATLAS(nn.Module):
    def __init__(self, encoder: nn.Module, task_vectors: list[dict[str, Tensor]], *, blocks: str = "tensor",
                 init: float = 0.3) -> None:
        super().__init__()
        if not task_vectors:
            raise AnytaskError("aTLAS needs at least one task vector")
        self.encoder = encoder.requires_grad_(False).eval()
        self.base = {n: p.detach() for n, p in encoder.named_parameters()}
        keys = sorted(set().union(*task_vectors))
        unknown = [k for k in keys if k not in self.base]
        if unknown:
            raise AnytaskError(f"task vector keys not in the encoder: {unknown[:3]}")
        self.keys = keys
        self.taus = [{k: tv[k].to(self.base[k].dtype) for k in keys if k in tv} for tv in task_vectors]
        names = sorted({block_of(k, blocks) for k in keys})
        self.block_names = names
        self.index = {k: names.index(block_of(k, blocks)) for k in keys}
        self.coef = nn.Parameter(torch.full((len(task_vectors), len(names)), float(init)))

    def parameters_now(self) -> dict[str, Tensor]:
        params = dict(self.base)
        for k in self.keys:
            b = self.index[k]
            params[k] = self.base[k] + sum(self.coef[t, b] * tau[k] for t, tau in enumerate(self.taus) if k in tau)
        return params

    def forward(self, **inputs) -> Tensor:
        return hidden_states(self.encoder, inputs, self.parameters_now())

    def merged_state(self) -> dict[str, Tensor]:
        with torch.no_grad():
            return {k: v.detach().clone() for k, v in self.parameters_now().items()}


@dataclass
class Objective:
    """Labelled texts of one task, its label names, and the weight of its loss (negative: forget)."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    weight: float = 1.0


@MERGES.register("atlas", reference="aTLAS, Zhang et al. 2024, https://arxiv.org/abs/2407.02880", input="weights",
                 output="weights", learned=True,
                 summary="learned per-block coefficients over task vectors, fitted on a few labelled examples")
def fit_atlas(base_folder: str | Path, task_vectors: list[dict[str, Tensor]], objectives: list[Objective], *,
              blocks: str = "tensor", steps: int = 50, lr: float = 0.01, batch_size: int = 16, max_length: int = 64,
              logit_scale: float = 20.0, init: float = 0.3, weight_decay: float = 0.0, cosine: bool = False,
              seed: int = 0) -> tuple[ATLAS, list[dict]]:
    """Learn the coefficients; returns the model (``coef``, ``merged_state()``) and the loss curve.
    ``cosine`` decays the learning rate to 0 over ``steps`` (the paper's few-shot schedule)."""
    if not objectives:
        raise AnytaskError("aTLAS needs at least one objective (labelled texts with label names)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    encoder, tokenizer = load_encoder(base_folder)
    heads = [label_head(encoder, tokenizer, o.label_names) for o in objectives]
    model = ATLAS(encoder, task_vectors, blocks=blocks, init=init)
    opt = torch.optim.AdamW([model.coef], lr=lr, weight_decay=weight_decay)
    history = []
    for step in range(1, steps + 1):
        if cosine:
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        total = torch.zeros(())
        for o, head in zip(objectives, heads):
            idx = rng.choice(len(o.texts), size=min(batch_size, len(o.texts)), replace=False)
            enc = tokenizer([o.texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            logits = logit_scale * mean_pool(model(**enc), enc["attention_mask"], normalize=True) @ head.T
            ce = F.cross_entropy(logits, torch.as_tensor([o.labels[i] for i in idx]))
            if o.weight < 0:  # forgetting: push the loss up to chance level, no further
                ce = torch.clamp(ce, max=math.log(len(o.label_names)))
            total = total + o.weight * ce
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({"step": step, "loss": round(total.item(), 5)})
    return model, history
