"""Small networks and memories shared by the continual learners: MLP heads that grow new
outputs as labels appear, a reservoir buffer, magnitude pruning."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class GrowingMLP(nn.Module):
    """``D -> hidden -> n_labels`` (or linear when hidden == 0); output units can be added."""

    def __init__(self, dim: int, n_out: int, hidden: int = 256, seed: int = 0) -> None:
        super().__init__()
        g = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()) if hidden else nn.Identity()
        self.out = nn.Linear(hidden or dim, max(n_out, 1))
        torch.random.set_rng_state(g)

    def grow(self, n_out: int, bias_offset: float = 0.0) -> None:
        """Add output units; they start with zero weights and the lowest existing bias plus
        ``bias_offset`` (negative: an output never trained should not win)."""
        old = self.out
        if n_out <= old.out_features:
            return
        new = nn.Linear(old.in_features, n_out)
        with torch.no_grad():
            new.weight.zero_()
            new.bias.fill_(float(old.bias.min()) + bias_offset if old.out_features else 0.0)
            new.weight[: old.out_features] = old.weight
            new.bias[: old.out_features] = old.bias
        self.out = new

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


def prune_by_magnitude(module: nn.Module, sparsity: float) -> None:
    """Zero the smallest-magnitude weights of every weight matrix, per layer."""
    if sparsity <= 0:
        return
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 2 and p.numel() > 1:
                k = int(p.numel() * sparsity)
                if k:
                    threshold = p.abs().flatten().kthvalue(k).values
                    p.mul_((p.abs() > threshold).float())


def count_nonzero(module: nn.Module) -> int:
    return int(sum((p != 0).sum().item() for p in module.parameters()))


class Reservoir:
    """A uniform sample of everything offered so far (Vitter's algorithm R)."""

    def __init__(self, capacity: int, dim: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.X = np.zeros((capacity, dim), np.float32)
        self.y = np.zeros(capacity, np.int64)
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        for x, label in zip(X, y):
            slot = self.seen if self.seen < self.capacity else int(self.rng.integers(0, self.seen + 1))
            if slot < self.capacity:
                self.X[slot], self.y[slot] = x, label
            self.seen += 1

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.rng.choice(len(self), size=min(n, len(self)), replace=False)
        return self.X[idx], self.y[idx]
