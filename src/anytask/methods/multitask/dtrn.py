"""DTRN: Deep Task-specific Bottom Representation Network (Liu et al., CIKM 2023, https://arxiv.org/abs/2308.05996).

Multi-task recommenders (MMoE, PLE) share the *bottom* representation and specialise only above it; DTRN makes
the bottom task-specific with two modules (no official code; this is a reconstruction, card 30):

* **TIM** (task-specific interest module): for each (task, behaviour sequence) a hypernetwork generates the
  parameters of a small DIN-style activation unit, ``a_i = MLP_theta([s_i, q, s_i*q, s_i-q])``, and the
  sequence is pooled by ``softmax(a)``. Low-rank generation keeps it parameter-efficient (card's pitfall).
* **TRM** (task-specific representation refinement): a SENet per task reweights every field,
  ``a_t = sigmoid(W2_t ReLU(W1_t mean_d(E)))``, ``R_t = concat_f a_t[f] E_f``.

R_t then enters the multi-task backbone (MMoE by default, shared experts applied to each task's own input).

Over frozen text features the "fields" are equal chunks of the final embedding plus, when the input has views
``(N, L, D)``, one field per view (e.g. per layer); the "behaviour sequences" are the chunk sequence and the
view sequence, and the query ``q`` is the mean of the fields (the target item in the paper). ``tim`` / ``trm``
switch the modules off for the card's ablations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.methods.multitask.base import MULTITASK, MultiTaskModel, expert, mlp


class HyperActivation(nn.Module):
    """Generates, for a condition ``z = [emb_task; emb_behaviour]``, a 2-layer activation MLP
    ``R^{4d} -> R^h -> R`` as a shared base plus a rank-``rank`` update: ``W1 = W1_0 + U(z) V(z)^T``."""

    def __init__(self, d: int, hidden: int, cond: int, rank: int = 4):
        super().__init__()
        self.d, self.h, self.r = d, hidden, rank
        self.w1 = nn.Parameter(torch.randn(4 * d, hidden) / (4 * d) ** 0.5)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.randn(hidden) / hidden ** 0.5)
        self.gen = nn.Sequential(nn.Linear(cond, 64), nn.ReLU(),
                                 nn.Linear(64, 4 * d * rank + hidden * rank + hidden + hidden))
        nn.init.zeros_(self.gen[-1].weight)  # starts as the shared unit; conditions learn their deviation
        nn.init.zeros_(self.gen[-1].bias)

    def params(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The generated ``(W1 (4d, h), b1 (h,), w2 (h,))`` for one condition ``z`` (cond,)."""
        out = self.gen(z)
        d4, h, r = 4 * self.d, self.h, self.r
        u, v = out[:d4 * r].view(d4, r), out[d4 * r:d4 * r + h * r].view(h, r)
        b1, w2 = out[d4 * r + h * r:d4 * r + h * r + h], out[d4 * r + h * r + h:]
        return self.w1 + u @ v.T, self.b1 + b1, self.w2 + w2

    def forward(self, seq: Tensor, q: Tensor, z: Tensor) -> Tensor:
        """Pool ``seq`` (B, S, d) by the generated unit's scores against query ``q`` (B, d): (B, d)."""
        w1, b1, w2 = self.params(z)
        qe = q.unsqueeze(1).expand_as(seq)
        feats = torch.cat([seq, qe, seq * qe, seq - qe], -1)          # (B, S, 4d)
        a = torch.relu(feats @ w1 + b1) @ w2                          # (B, S)
        return (torch.softmax(a, -1).unsqueeze(-1) * seq).sum(1)


class SqueezeExcite(nn.Module):
    """Per-task SENet over F fields of width d: one weight in (0, 1) per field."""

    def __init__(self, n_fields: int, reduction: int = 2):
        super().__init__()
        r = max(1, n_fields // reduction)
        self.net = nn.Sequential(nn.Linear(n_fields, r), nn.ReLU(), nn.Linear(r, n_fields))

    def forward(self, E: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.sigmoid(self.net(E.mean(-1)))                        # (B, F)
        return E * a.unsqueeze(-1), a


@MULTITASK.register("dtrn", reference="Liu et al. 2023, Deep Task-specific Bottom Representation Network for "
                    "Multi-Task Recommendation, https://arxiv.org/abs/2308.05996", saveable=True)
class DTRN(MultiTaskModel):
    """Task-specific bottoms (hypernetwork interest pooling + per-task field SENet) under an MMoE.

    ``fields``: chunks the final embedding is cut into; ``field_dim``: the width every field is projected to;
    ``tim`` / ``trm``: the two modules (off = the card's ablations); ``backbone``: ``mmoe`` or
    ``shared_bottom`` above the task-specific bottoms; ``experts``: MMoE's."""

    views = True

    def __init__(self, *, fields: int = 8, field_dim: int = 32, tim: bool = True, trm: bool = True,
                 backbone: str = "mmoe", experts: int = 4, **kw):
        super().__init__(**kw)
        self.fields, self.field_dim, self.tim, self.trm = fields, field_dim, tim, trm
        self.backbone, self.experts = backbone, experts

    def _build(self, in_shape, n_classes):
        if self.backbone not in ("mmoe", "shared_bottom"):
            raise AnytaskError(f"DTRN backbone {self.backbone!r}: use 'mmoe' or 'shared_bottom'")
        D = in_shape[-1]
        if D % self.fields:
            raise AnytaskError(f"DTRN: feature width {D} does not split into fields={self.fields} equal chunks; "
                               f"pick a divisor of {D}")
        n_views = in_shape[0] if len(in_shape) == 2 else 0
        return _DTRNBody(D, n_views, self, n_classes)

    def task_field_weights(self, X, *, task=None):
        """TRM's per-field weights ``(N, F)`` for ``task`` (chunks first, then views, then interest vectors)."""
        t = self._task_index(task)
        x = self._features(X)
        with torch.no_grad():
            return self.net_.body.represent(x, t)[1].numpy()


class _DTRNBody(nn.Module):
    def __init__(self, D: int, n_views: int, cfg: DTRN, n_classes: list[int]):
        super().__init__()
        T, d, F = len(n_classes), cfg.field_dim, cfg.fields
        self.F, self.n_views, self.use_tim, self.use_trm = F, n_views, cfg.tim, cfg.trm
        self.chunk_proj = nn.Linear(D // F, d)          # shared across chunks: fields of the same width d
        self.view_proj = nn.Linear(D, d) if n_views else None
        n_beh = 2 if n_views else 1
        self.task_emb = nn.Embedding(T, 8)
        self.beh_emb = nn.Embedding(n_beh, 8)
        self.hyper = HyperActivation(d, 32, 16) if cfg.tim else None
        n_fields = F + n_views + (n_beh if cfg.tim else 0)
        self.se = nn.ModuleList(SqueezeExcite(n_fields) for _ in range(T)) if cfg.trm else None
        width = n_fields * d
        self.n_experts = cfg.experts if cfg.backbone == "mmoe" else 1
        self.experts = nn.ModuleList(expert(width, cfg.hidden, cfg.dropout) for _ in range(self.n_experts))
        self.gates = nn.ModuleList(nn.Linear(width, self.n_experts) for _ in range(T)) \
            if self.n_experts > 1 else None
        self.towers = nn.ModuleList(mlp(cfg.hidden, c, dropout=cfg.dropout) for c in n_classes)

    def represent(self, x: Tensor, t: int) -> tuple[Tensor, Tensor | None]:
        """The task-specific bottom representation R_t (B, F'*d) and TRM's field weights (B, F') or None."""
        final = x[:, -1] if x.dim() == 3 else x                               # (B, D)
        chunks = self.chunk_proj(final.view(len(final), self.F, -1))         # (B, F, d)
        seqs = [chunks]
        if self.n_views:
            seqs.append(self.view_proj(x))                                   # (B, L, d)
        E = torch.cat(seqs, 1)                                               # (B, F+L, d)
        if self.hyper is not None:
            q = E.mean(1)
            te = self.task_emb.weight[t]
            interests = [self.hyper(s, q, torch.cat([te, self.beh_emb.weight[b]])) for b, s in enumerate(seqs)]
            E = torch.cat([E, torch.stack(interests, 1)], 1)                 # (B, F', d)
        weights = None
        if self.se is not None:
            E, weights = self.se[t](E)
        return E.flatten(1), weights

    def forward(self, x: Tensor, t: int) -> Tensor:
        R, _ = self.represent(x, t)
        e = torch.stack([f(R) for f in self.experts], 1)                     # (B, N, H)
        if self.gates is None:
            h = e[:, 0]
        else:
            h = (torch.softmax(self.gates[t](R), -1).unsqueeze(-1) * e).sum(1)
        return self.towers[t](h)
