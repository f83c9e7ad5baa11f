"""Prompt-anchored scoring with a light residual adapter (UniQA's multi-cue head).

Zhou et al. 2024, "UniQA: Unified Vision-Language Pre-training for Image Quality and Aesthetic
Assessment", https://arxiv.org/abs/2406.01069 (card 02). Each cue group is a ladder of anchor texts,
lowest level first ("a terrible movie" ... "an excellent movie"), embedded once by the frozen backbone.
A feature ``f`` is refined by a bias-free bottleneck MLP ending in ReLU, ``f' = normalize(f + a(f))``;
its similarities to a group's anchors become softmax weights over that group's levels, which average
learnable level values ``s`` (initialised 0.2 ... 1.0); the groups' scores are averaged:

    score = mean_g  sum_k softmax_k(logit_scale * f' . T_gk) * s_k

``train="none"`` is the zero-shot scorer (no labels; ``fit()`` with no data), ``"scales"`` learns ``s``
only, ``"adapter"`` learns the adapter and ``s`` (MSE to targets scaled to [0, 1], Adam, cosine
schedule — the card's 2e-4, 20 epochs, batch 8). ``s`` is free, as in the paper, so levels can cross;
``levels_`` shows them after fitting.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.functional import normalize

from anytask.core.errors import AnytaskError
from anytask.methods.scores.base import SCORERS, BaseScorer

QUALITY = (("bad", "poor", "fair", "good", "perfect"),)


class _Adapter(nn.Module):
    """Linear(D -> D/r) - ReLU - Linear(D/r -> D) - ReLU, bias-free (the card's CLIP-Adapter-style residual)."""

    def __init__(self, dim: int, reduction: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, max(1, dim // reduction), bias=False)
        self.up = nn.Linear(max(1, dim // reduction), dim, bias=False)

    def forward(self, f: Tensor) -> Tensor:
        return normalize(f + torch.relu(self.up(torch.relu(self.down(f)))), dim=-1)


@SCORERS.register("anchored", reference="UniQA, Zhou et al. 2024, https://arxiv.org/abs/2406.01069",
                  summary="softmax over ladders of anchor texts averages learnable levels; residual adapter",
                  output="values", saveable=True, needs_backbone=True, label_names=True, embeds_text=True)
class AnchoredScorer(BaseScorer):
    def __init__(self, *, groups=QUALITY, template: str = "{}", train: str = "adapter", logit_scale: float = 100.0,
                 reduction: int = 2, lr: float = 2e-4, epochs: int = 20, batch_size: int = 8, seed: int = 0,
                 target_range: tuple = (0.0, 1.0), order: list | None = None, backbone: str = "minilm",
                 cache_dir: str | None = None) -> None:
        self.groups = groups
        self.template = template
        self.train = train
        self.logit_scale = logit_scale
        self.reduction = reduction
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.target_range = target_range
        self.order = order
        self.backbone = backbone
        self.cache_dir = cache_dir

    # -- anchors --------------------------------------------------------------------------------
    def _check_groups(self) -> list[list[str]]:
        groups = [list(g) for g in (self.groups or [])]
        if not groups or any(isinstance(g, str) for g in self.groups):
            raise AnytaskError("groups must be a list of anchor ladders, e.g. [['bad', 'fair', 'good']]: each a list "
                               "of texts from the lowest level to the highest")
        sizes = {len(g) for g in groups}
        if len(sizes) != 1 or min(sizes) < 2:
            raise AnytaskError(f"every cue group needs the same number (>= 2) of anchors, lowest first; got sizes "
                               f"{[len(g) for g in groups]}")
        if "{}" not in self.template:
            raise AnytaskError(f"template must contain '{{}}' for the anchor, got {self.template!r}")
        if self.train not in ("none", "scales", "adapter"):
            raise AnytaskError(f"train={self.train!r}; use 'none' (zero-shot), 'scales' or 'adapter'")
        return groups

    def anchor_embeddings(self) -> np.ndarray:
        """Unit-norm embeddings of every anchor ``(G, K, D)``, through the backbone's embedding cache."""
        from anytask.backbones import get_embedder

        groups = self._check_groups()
        texts = [self.template.format(a) for g in groups for a in g]
        E = get_embedder(self.backbone, cache_dir=self.cache_dir).embed(texts)
        return normalize(torch.from_numpy(E).view(len(groups), len(groups[0]), -1), dim=-1).numpy()

    def _start(self, dim: int | None, *, train: str) -> None:
        anchors = torch.from_numpy(self.anchor_embeddings())
        if dim is not None and anchors.shape[-1] != dim:
            raise AnytaskError(f"backbone {self.backbone!r} gives {anchors.shape[-1]}-d anchors but X has {dim} "
                               "features; embed X with the same backbone")
        self.anchors_ = anchors
        self.n_features_in_ = anchors.shape[-1]
        self.levels_ = torch.linspace(0.2, 1.0, anchors.shape[1])
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.adapter_ = _Adapter(self.n_features_in_, self.reduction)
        if train != "adapter":  # no adapter: the residual is exactly zero, f' = f
            nn.init.zeros_(self.adapter_.up.weight)
        self.adapter_.requires_grad_(False)

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, X=None, y=None):
        if X is None and y is None:  # zero-shot: the anchors alone, scores in target_range
            self._check_groups()
            lo, hi = (float(v) for v in self.target_range)
            self._start(None, train="none")
            self.target_range_ = (lo, hi)
            return self
        return super().fit(X, y)

    def _fit(self, X: Tensor, y: Tensor) -> None:
        self._check_groups()
        self._start(X.shape[1], train=self.train)
        if self.train == "none":
            return
        levels = nn.Parameter(self.levels_.clone())
        params = [levels] + (list(self.adapter_.parameters()) if self.train == "adapter" else [])
        for p in params:
            p.requires_grad_(True)
        steps = max(1, self.epochs * -(-len(X) // self.batch_size))
        opt = torch.optim.Adam(params, lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        gen = torch.Generator().manual_seed(self.seed)
        f = normalize(X, dim=-1)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(X), generator=gen).split(self.batch_size):
                loss = torch.mean((self._forward(f[idx], levels) - y[idx]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.levels_ = levels.detach().clone()
        self.adapter_.requires_grad_(False)

    # -- scoring ----------------------------------------------------------------------------------
    def _forward(self, f: Tensor, levels: Tensor) -> Tensor:
        p = self.anchor_weights(f, normalized=True)  # (N, G, K)
        return (p * levels).sum(-1).mean(-1)

    def anchor_weights(self, X, *, normalized: bool = False) -> Tensor:
        """Softmax weights of each row over each group's anchors ``(N, G, K)``; rows of a group sum to 1."""
        f = X if normalized else normalize(self._check_X(X), dim=-1)
        g = self.adapter_(f)
        return torch.softmax(self.logit_scale * torch.einsum("nd,gkd->ngk", g, self.anchors_), dim=-1)

    def _unit_scores(self, X: Tensor) -> Tensor:
        with torch.no_grad():
            return self._forward(normalize(X, dim=-1), self.levels_)

    def _tensors(self) -> dict[str, Tensor]:
        return {"anchors": self.anchors_, "levels": self.levels_,
                **{f"adapter.{k}": v for k, v in self.adapter_.state_dict().items()}}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.anchors_ = tensors["anchors"].float()
        self.levels_ = tensors["levels"].float()
        self.adapter_ = _Adapter(self.anchors_.shape[-1], self.reduction)
        self.adapter_.load_state_dict({k[8:]: v.float() for k, v in tensors.items() if k.startswith("adapter.")})
        self.adapter_.requires_grad_(False)
