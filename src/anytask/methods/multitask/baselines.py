"""The multi-task baselines the papers compare against, written once: independent heads (no sharing),
shared-bottom (Caruana 1997), MMoE (Ma et al. 2018) and PLE (Tang et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anytask.methods.multitask.base import MULTITASK, MultiTaskModel, expert, mlp


class _Towers(nn.Module):
    def __init__(self, d: int, n_classes: list[int], dropout: float):
        super().__init__()
        self.towers = nn.ModuleList(mlp(d, c, dropout=dropout) for c in n_classes)

    def __getitem__(self, t: int) -> nn.Module:
        return self.towers[t]


@MULTITASK.register("independent", reference="no sharing: one bottom and tower per task (the baseline of every "
                    "multi-task paper)", saveable=True)
class Independent(MultiTaskModel):
    """One bottom and tower per task, trained in the same loop: the no-sharing baseline with the same capacity."""

    def _build(self, in_shape, n_classes):
        return _IndependentNet(in_shape[0], self.hidden, n_classes, self.dropout)


class _IndependentNet(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_classes: list[int], dropout: float):
        super().__init__()
        self.bottoms = nn.ModuleList(expert(d_in, hidden, dropout) for _ in n_classes)
        self.towers = _Towers(hidden, n_classes, dropout)

    def forward(self, x: Tensor, t: int) -> Tensor:
        return self.towers[t](self.bottoms[t](x))


@MULTITASK.register("shared_bottom", reference="Caruana 1997, Multitask Learning, "
                    "https://doi.org/10.1023/A:1007379606734", saveable=True)
class SharedBottom(MultiTaskModel):
    """One bottom network shared by every task, a tower per task."""

    def _build(self, in_shape, n_classes):
        return _SharedBottomNet(in_shape[0], self.hidden, n_classes, self.dropout)


class _SharedBottomNet(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_classes: list[int], dropout: float):
        super().__init__()
        self.bottom = expert(d_in, hidden, dropout)
        self.towers = _Towers(hidden, n_classes, dropout)

    def forward(self, x: Tensor, t: int) -> Tensor:
        return self.towers[t](self.bottom(x))


class _MoE(nn.Module):
    """N experts and one softmax gate per task over them (MMoE's layer); ``gates`` remembered for statistics."""

    def __init__(self, d_in: int, d_out: int, n_experts: int, n_gates: int, dropout: float):
        super().__init__()
        self.experts = nn.ModuleList(expert(d_in, d_out, dropout) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_experts) for _ in range(n_gates))

    def forward(self, x: Tensor, t: int) -> tuple[Tensor, Tensor]:
        e = torch.stack([f(x) for f in self.experts], dim=1)       # (B, N, H)
        g = torch.softmax(self.gates[t](x), dim=-1)               # (B, N)
        return (g.unsqueeze(-1) * e).sum(1), g


@MULTITASK.register("mmoe", reference="Ma et al. 2018, Multi-gate Mixture-of-Experts (MMoE), "
                    "https://doi.org/10.1145/3219819.3220007", saveable=True)
class MMoE(MultiTaskModel):
    """Shared experts, one softmax gate per task over them, a tower per task. ``experts``: how many."""

    def __init__(self, *, experts: int = 4, **kw):
        super().__init__(**kw)
        self.experts = experts

    def _build(self, in_shape, n_classes):
        return _MMoENet(in_shape[0], self.hidden, n_classes, self.experts, self.dropout)


class _MMoENet(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_classes: list[int], n_experts: int, dropout: float):
        super().__init__()
        self.moe = _MoE(d_in, hidden, n_experts, len(n_classes), dropout)
        self.towers = _Towers(hidden, n_classes, dropout)

    def forward(self, x: Tensor, t: int) -> Tensor:
        h, _ = self.moe(x, t)
        return self.towers[t](h)


class _CGC(nn.Module):
    """One PLE extraction level: shared experts, task-specific experts, a gate per task over (own + shared) and,
    below the top level, a shared gate over all experts whose output feeds the next level's shared experts."""

    def __init__(self, d_in: int, d_out: int, n_tasks: int, n_shared: int, n_own: int, shared_gate: bool, dropout):
        super().__init__()
        self.shared = nn.ModuleList(expert(d_in, d_out, dropout) for _ in range(n_shared))
        self.own = nn.ModuleList(nn.ModuleList(expert(d_in, d_out, dropout) for _ in range(n_own))
                                 for _ in range(n_tasks))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_own + n_shared) for _ in range(n_tasks))
        self.shared_gate = nn.Linear(d_in, n_tasks * n_own + n_shared) if shared_gate else None

    def task_out(self, x_task: Tensor, t: int) -> Tensor:
        e = torch.stack([f(x_task) for f in self.own[t]] + [f(x_task) for f in self.shared], 1)   # (B, n_own+n_sh, H)
        g = torch.softmax(self.gates[t](x_task), -1)
        return (g.unsqueeze(-1) * e).sum(1)


@MULTITASK.register("ple", reference="Tang et al. 2020, Progressive Layered Extraction (PLE), "
                    "https://doi.org/10.1145/3383313.3412236", saveable=True)
class PLE(MultiTaskModel):
    """Progressive layered extraction: ``levels`` CGC levels of task-specific and shared experts.

    Training draws one task per batch, so a level's input for task t is t's own path; the shared path of level
    l+1 reads level l's shared gate over *all* experts (every task's and the shared ones) applied to the shared
    path's input (the paper's shared-expert gate)."""

    def __init__(self, *, levels: int = 2, shared_experts: int = 2, task_experts: int = 1, **kw):
        super().__init__(**kw)
        self.levels, self.shared_experts, self.task_experts = levels, shared_experts, task_experts

    def _build(self, in_shape, n_classes):
        return _PLENet(in_shape[0], self.hidden, n_classes, self.levels, self.shared_experts, self.task_experts,
                       self.dropout)


class _PLENet(nn.Module):
    def __init__(self, d_in: int, hidden: int, n_classes: list[int], levels: int, n_shared: int, n_own: int,
                 dropout: float):
        super().__init__()
        dims = [d_in] + [hidden] * levels
        self.levels = nn.ModuleList(
            _CGC(dims[i], dims[i + 1], len(n_classes), n_shared, n_own, shared_gate=i < levels - 1, dropout=dropout)
            for i in range(levels))
        self.towers = _Towers(hidden, n_classes, dropout)

    def forward(self, x: Tensor, t: int) -> Tensor:
        x_task, x_shared = x, x
        for level in self.levels:
            if level.shared_gate is not None:
                every = [f(x_shared) for experts in level.own for f in experts] + [f(x_shared) for f in level.shared]
                g = torch.softmax(level.shared_gate(x_shared), -1)
                next_shared = (g.unsqueeze(-1) * torch.stack(every, 1)).sum(1)
            x_task = level.task_out(x_task, t)
            if level.shared_gate is not None:
                x_shared = next_shared
        return self.towers[t](x_task)
