"""TaskExpert: dynamically assembling multi-task representations with a memorial mixture of experts
(Ye & Xu, ICCV 2023, https://arxiv.org/abs/2307.15324).

At several backbone layers, N experts decompose the layer's features into task-generic spaces; a gate per task,
per sample, assembles a task-specific feature from them; a per-task **memory** joins the gate as an extra
expert (it reads the previous layers' task feature) and is updated with the result, so the task feature is
carried across layers into the task's head. No official code exists (card 36); this reconstruction follows the
card's pseudo-code:

    for layer l:  F_n = Expert_n(X_l);  g = softmax(Gate_t(X_l)) over N+1
                  T_t = sum_n g_n F_n + g_N M_t;   M_t = M_t + T_t (residual) or a gated update
    pred_t = Head_t(M_t)

Over frozen text features the layers are the views of the input ``(N, L, D)`` (the mean-pooled states of
MiniLM's layers 2, 4, 6 in the benchmark: ``anytask.backbones.layer_embeddings``); an ``(N, D)`` input is one
layer. ``memory=False`` is the card's ablation (b): the gates mix the N experts only and the head reads the
last layer's T_t. ``gate_stats`` reports each task's mean gate and its entropy (gate collapse is the pitfall).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.methods.multitask.base import MULTITASK, MultiTaskModel, mlp


@MULTITASK.register("taskexpert", reference="Ye & Xu 2023, TaskExpert: Dynamically Assembling Multi-Task "
                    "Representations with Memorial Mixture-of-Experts, https://arxiv.org/abs/2307.15324",
                    saveable=True)
class TaskExpert(MultiTaskModel):
    """Memorial mixture of experts over the input's views (layers). ``experts``: N; ``memory``: the memory
    expert and its update (``"residual"`` or ``"gated"``)."""

    views = True

    def __init__(self, *, experts: int = 4, memory: bool = True, update: str = "residual", **kw):
        super().__init__(**kw)
        self.experts, self.memory, self.update = experts, memory, update

    def _build(self, in_shape, n_classes):
        if self.update not in ("residual", "gated"):
            raise AnytaskError(f"TaskExpert update {self.update!r}: use 'residual' or 'gated'")
        return _TaskExpertBody(in_shape, self, n_classes)

    def gate_stats(self, X, *, task=None) -> dict:
        """Mean gate weight per expert and layer (the memory last) and the mean per-sample gate entropy (nats)
        for ``task``: a collapsed gate (entropy near 0, one expert always chosen) makes the model static."""
        t = self._task_index(task)
        x = self._features(X)
        with torch.no_grad():
            _, gates = self.net_.body.run(x, t)
        g = torch.stack(gates, 1)                                            # (B, L, N[+1])
        ent = -(g.clamp_min(1e-12).log() * g).sum(-1)
        return {"mean_gate": g.mean(0).numpy(), "entropy": float(ent.mean()),
                "max_entropy": float(np.log(g.shape[-1]))}


class _TaskExpertBody(nn.Module):
    def __init__(self, in_shape, cfg: TaskExpert, n_classes: list[int]):
        super().__init__()
        T, H, N = len(n_classes), cfg.hidden, cfg.experts
        self.L = in_shape[0] if len(in_shape) == 2 else 1
        D = in_shape[-1]
        self.memory, self.gated = cfg.memory, cfg.memory and cfg.update == "gated"

        def make_expert():
            return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(D, H), nn.LayerNorm(H), nn.GELU())

        self.experts = nn.ModuleList(nn.ModuleList(make_expert() for _ in range(N)) for _ in range(self.L))
        width = N + (1 if cfg.memory else 0)
        self.gates = nn.ModuleList(nn.ModuleList(nn.Linear(D, width) for _ in range(T)) for _ in range(self.L))
        self.init_memory = nn.Linear(D, H) if cfg.memory else None  # memory starts as a projection of layer 1
        self.write = nn.ModuleList(nn.Linear(2 * H, H) for _ in range(self.L)) if self.gated else None
        self.heads = nn.ModuleList(mlp(H, c, dropout=cfg.dropout) for c in n_classes)

    def run(self, x: Tensor, t: int) -> tuple[Tensor, list[Tensor]]:
        layers = [x[:, i] for i in range(self.L)] if x.dim() == 3 else [x]
        memory = self.init_memory(layers[0]) if self.memory else None     # (B, H)
        gates, feat = [], None
        for l, X in enumerate(layers):
            F = torch.stack([f(X) for f in self.experts[l]], 1)           # (B, N, H)
            if self.memory:
                F = torch.cat([F, memory.unsqueeze(1)], 1)                 # memory read = expert N+1
            g = torch.softmax(self.gates[l][t](X), -1)                     # (B, N[+1])
            feat = (g.unsqueeze(-1) * F).sum(1)                            # T_t
            gates.append(g)
            if self.memory:
                if self.gated:
                    z = torch.sigmoid(self.write[l](torch.cat([memory, feat], -1)))
                    memory = (1 - z) * memory + z * feat
                else:
                    memory = memory + feat
        return (memory if self.memory else feat), gates

    def forward(self, x: Tensor, t: int) -> Tensor:
        out, _ = self.run(x, t)
        return self.heads[t](out)
