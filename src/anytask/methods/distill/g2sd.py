"""G2SD: generic-to-specific distillation of masked autoencoders (Huang et al., CVPR 2023,
https://arxiv.org/abs/2302.14771; card 07), the image variant at MNIST scale.

A small ViT student learns from a larger masked-autoencoder teacher in two stages:

1. **Generic** (task-agnostic): under the *same* random mask (75 %) for both, the student MAE's decoder, through a
   prediction MLP up to the teacher's decoder width, regresses the frozen teacher decoder's hidden states after
   block ``teacher_block`` — LayerNorm without affine (eps 1e-6) — with smooth-L1 (beta 2), on all tokens (visible,
   masked and cls; ``supervise_all=False``: masked tokens only).
2. **Specific**: the student encoder is fine-tuned on labels with a DeiT distillation token: ``1/2 CE(cls head, y) +
   1/2 CE(dist head, argmax teacher logits)`` against the teacher fine-tuned on the same labels; prediction averages
   the two heads.

``G2SDClassifier(recipe=...)`` is a scikit-learn classifier over images ``(N, H, W)`` (or ``(N, H, W, 1)``) in [0, 1]
(uint8 is scaled) that trains the student by one of the card's recipes — ``"g2sd"`` (both stages), ``"generic"``
(generic distillation, then plain fine-tuning), ``"specific"`` (scratch student, distillation-token fine-tuning),
``"mae"`` (the student pre-trained as an MAE on its own, then plain fine-tuning), ``"scratch"`` (plain fine-tuning)
— reusing a ``MAETeacher`` (pre-trained MAE + its fine-tuned copy) that is trained once and shared, or trained in
``fit`` when none is given. Sizes default to the card's small-scale plan (teacher 192-d x 6 / decoder 128-d x 4;
student 96-d x 6 / decoder 64-d x 2, patch 4). Departures: learned position embeddings; AdamW at a constant lr after
a short warm-up; no mixup / cutmix / layer decay.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

IMAGE_DISTILLERS: Registry = Registry("image distiller", family="distill")
RECIPES = ("g2sd", "generic", "specific", "mae", "scratch")


def _blocks(dim: int, depth: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                                    batch_first=True, norm_first=True) for _ in range(depth))


class MAE(nn.Module):
    """A ViT encoder (cls token, learned positions) with an MAE decoder; ``classify`` adds DeiT's two heads."""

    def __init__(self, image: int, patch: int, dim: int, depth: int, heads: int, dec_dim: int, dec_depth: int,
                 dec_heads: int, n_classes: int = 0):
        super().__init__()
        self.patch, self.n = patch, (image // patch) ** 2
        p2 = patch * patch
        self.embed = nn.Linear(p2, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.n + 1, dim) * 0.02)
        self.blocks, self.norm = _blocks(dim, depth, heads), nn.LayerNorm(dim)
        self.dec_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.dec_pos = nn.Parameter(torch.randn(1, self.n + 1, dec_dim) * 0.02)
        self.dec_blocks, self.dec_norm = _blocks(dec_dim, dec_depth, dec_heads), nn.LayerNorm(dec_dim)
        self.dec_pred = nn.Linear(dec_dim, p2)
        self.head = nn.Linear(dim, max(n_classes, 1))
        self.dist_head = nn.Linear(dim, max(n_classes, 1))

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W)`` images -> ``(B, n, patch^2)``."""
        p = self.patch
        B, H, W = x.shape
        return x.reshape(B, H // p, p, W // p, p).permute(0, 1, 3, 2, 4).reshape(B, -1, p * p)

    def encode(self, x: torch.Tensor, noise: torch.Tensor | None = None, ratio: float = 0.75):
        """Encoder states of the visible patches (cls first) and ``ids_restore``; ``noise`` ``(B, n)`` fixes the
        mask (the lowest ``(1 - ratio) n`` noises are kept), None keeps every patch."""
        t = self.embed(self.patches(x)) + self.pos[:, 1:]
        ids_restore = None
        if noise is not None:
            keep = int(round(self.n * (1 - ratio)))
            ids_shuffle = torch.argsort(noise, 1)
            ids_restore = torch.argsort(ids_shuffle, 1)
            t = torch.gather(t, 1, ids_shuffle[:, :keep, None].expand(-1, -1, t.shape[-1]))
        t = torch.cat([(self.cls + self.pos[:, :1]).expand(len(t), -1, -1), t], 1)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t), ids_restore

    def decode(self, z: torch.Tensor, ids_restore: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Decoder hidden states ``(B, n + 1, dec_dim)`` (cls first, patches in image order) after ``upto`` blocks
        (all blocks and the final norm when None)."""
        t = self.dec_embed(z)
        B, k = t.shape[0], t.shape[1] - 1
        masks = self.mask_token.expand(B, self.n - k, -1)
        rest = torch.cat([t[:, 1:], masks], 1)
        rest = torch.gather(rest, 1, ids_restore[:, :, None].expand(-1, -1, t.shape[-1]))
        t = torch.cat([t[:, :1], rest], 1) + self.dec_pos
        for blk in self.dec_blocks[:upto]:
            t = blk(t)
        return t if upto is not None else self.dec_norm(t)

    def classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """DeiT's two heads: the cls token's and the distillation token's logits (full image, no mask)."""
        t = self.embed(self.patches(x)) + self.pos[:, 1:]
        lead = torch.cat([self.cls + self.pos[:, :1], self.dist + self.pos[:, :1]], 1).expand(len(t), -1, -1)
        t = torch.cat([lead, t], 1)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        return self.head(t[:, 0]), self.dist_head(t[:, 1])


def mask_noise(n_images: int, n_patches: int, gen: torch.Generator) -> torch.Tensor:
    """The random noise that fixes a mask; generic distillation passes the same noise to teacher and student."""
    return torch.rand(n_images, n_patches, generator=gen)


def masked_patches(noise: torch.Tensor, ratio: float = 0.75) -> torch.Tensor:
    """``(B, n)`` True where ``encode(x, noise, ratio)`` hides the patch (all but the lowest-noise ones)."""
    keep = int(round(noise.shape[1] * (1 - ratio)))
    return torch.argsort(torch.argsort(noise, 1), 1) >= keep


def generic_targets(teacher: MAE, x: torch.Tensor, noise: torch.Tensor, block: int) -> torch.Tensor:
    """The teacher decoder's hidden states after ``block`` blocks, LayerNorm'ed without affine (eps 1e-6)."""
    with torch.no_grad():
        z, ids = teacher.encode(x, noise)
        h = teacher.decode(z, ids, upto=block)
    return F.layer_norm(h, h.shape[-1:], eps=1e-6)


def generic_loss(student: MAE, predictor: nn.Module, teacher: MAE, x: torch.Tensor, noise: torch.Tensor, block: int,
                 supervise_all: bool) -> torch.Tensor:
    """Smooth-L1 (beta 2) between the student's predicted and the teacher's target hidden states: every token
    (visible, masked, cls) when ``supervise_all``, else the masked patch tokens only."""
    target = generic_targets(teacher, x, noise, block)
    z, ids = student.encode(x, noise)
    pred = predictor(student.decode(z, ids))
    loss = F.smooth_l1_loss(pred, target, beta=2.0, reduction="none").mean(-1)
    if supervise_all:
        return loss.mean()
    return loss[:, 1:][masked_patches(noise)].mean()


def mae_loss(model: MAE, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """MAE's pixel loss on the masked patches."""
    z, ids = model.encode(x, noise)
    pred = model.dec_pred(model.decode(z, ids))[:, 1:]
    target = model.patches(x)
    masked = masked_patches(noise).float()
    return ((((pred - target) ** 2).mean(-1)) * masked).sum() / masked.sum()


def _images(X) -> torch.Tensor:
    X = np.asarray(X)
    if X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise AnytaskError(f"images must be square (N, H, W) or (N, H, W, 1) arrays; got shape {X.shape}")
    if not np.isfinite(X.astype(np.float64)).all():
        raise AnytaskError("images contain NaN or inf")
    X = X.astype(np.float32) / (255.0 if X.dtype == np.uint8 or X.max() > 1.5 else 1.0)
    return torch.from_numpy(X)


def _train(params, steps: int, lr: float, step_fn, gen: torch.Generator, desc: str, progress: bool) -> list[float]:
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    warm = max(1, steps // 20)
    losses = []
    for i in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (i + 1) / warm)
        loss = step_fn(gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def finetune(model: MAE, X: torch.Tensor, y: torch.Tensor, steps: int, lr: float, batch: int, gen: torch.Generator,
             teacher: MAE | None = None, progress: bool = False) -> list[float]:
    """Labels into ``model``'s encoder and heads: CE on both heads, or DeiT's hard distillation when ``teacher``
    (its argmax) is given: ``1/2 CE(cls, y) + 1/2 CE(dist, teacher)``."""
    params = [p for n, p in model.named_parameters() if not n.startswith(("dec_", "mask_token"))]

    def step(g):
        i = torch.randint(len(X), (batch,), generator=g)
        a, d = model.classify(X[i])
        if teacher is None:
            return 0.5 * (F.cross_entropy(a, y[i]) + F.cross_entropy(d, y[i]))
        with torch.no_grad():
            t = sum(teacher.classify(X[i])).argmax(1)
        return 0.5 * F.cross_entropy(a, y[i]) + 0.5 * F.cross_entropy(d, t)

    model.train()
    return _train(params, steps, lr, step, gen, "fine-tune", progress)


class MAETeacher:
    """The teacher: an MAE pre-trained on the images (``mae``, frozen for generic distillation) and a copy fine-tuned
    on the labels (``classifier``, for specific distillation)."""

    def __init__(self, X, y, *, image: int, patch: int = 4, dim: int = 192, depth: int = 6, heads: int = 4,
                 dec_dim: int = 128, dec_depth: int = 4, pretrain_steps: int = 3000, finetune_steps: int = 1500,
                 batch_size: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = False):
        X, y = _images(X), torch.as_tensor(np.asarray(y), dtype=torch.long)
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.mae = MAE(image, patch, dim, depth, heads, dec_dim, dec_depth, 4, int(y.max()) + 1)

        def step(g):
            i = torch.randint(len(X), (batch_size,), generator=g)
            return mae_loss(self.mae, X[i], mask_noise(batch_size, self.mae.n, g))

        self.pretrain_loss = _train(self.mae.parameters(), pretrain_steps, lr, step, gen, "teacher MAE", progress)
        self.classifier = copy.deepcopy(self.mae)
        finetune(self.classifier, X, y, finetune_steps, lr, batch_size, gen, progress=progress)
        for m in (self.mae, self.classifier):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def predict(self, X) -> np.ndarray:
        with torch.no_grad():
            return sum(self.classifier.classify(_images(X))).argmax(1).numpy()


@IMAGE_DISTILLERS.register("g2sd", reference="Huang et al. 2023, https://arxiv.org/abs/2302.14771", input="images",
                           output="labels")
class G2SDClassifier(BaseEstimator, ClassifierMixin):
    """A small ViT trained by one of G2SD's recipes from a (shared) MAE teacher; see the module."""

    def __init__(self, recipe: str = "g2sd", teacher: MAETeacher | None = None, dim: int = 96, depth: int = 6,
                 heads: int = 4, dec_dim: int = 64, dec_depth: int = 2, patch: int = 4, teacher_block: int = 2,
                 supervise_all: bool = True, pretrain_steps: int = 2000, finetune_steps: int = 1500,
                 batch_size: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = False):
        self.recipe, self.teacher, self.dim, self.depth, self.heads = recipe, teacher, dim, depth, heads
        self.dec_dim, self.dec_depth, self.patch, self.teacher_block = dec_dim, dec_depth, patch, teacher_block
        self.supervise_all, self.pretrain_steps, self.finetune_steps = supervise_all, pretrain_steps, finetune_steps
        self.batch_size, self.lr, self.seed, self.progress = batch_size, lr, seed, progress

    def _check(self) -> None:
        if self.recipe not in RECIPES:
            raise AnytaskError(f"recipe={self.recipe!r}: choose one of {', '.join(RECIPES)}")
        for name in ("dim", "depth", "heads", "dec_dim", "dec_depth", "patch", "pretrain_steps", "finetune_steps",
                     "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")
        if self.dim % self.heads or self.dec_dim % 4:
            raise AnytaskError(f"dim={self.dim} must divide by heads={self.heads} and dec_dim by 4")

    def fit(self, X, y):
        self._check()
        Xt = _images(X)
        self.classes_, yi = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) < 2:
            raise AnytaskError("fit needs at least two classes")
        if Xt.shape[1] % int(self.patch):
            raise AnytaskError(f"image side {Xt.shape[1]} is not a multiple of patch={self.patch}")
        yt = torch.as_tensor(yi, dtype=torch.long)
        teacher = self.teacher
        if teacher is None and self.recipe in ("g2sd", "generic", "specific"):
            teacher = MAETeacher(X, yi, image=Xt.shape[1], patch=int(self.patch), seed=int(self.seed),
                                 progress=self.progress)
        if teacher is not None and (teacher.mae.n != (Xt.shape[1] // int(self.patch)) ** 2):
            raise AnytaskError("the teacher was trained on images of another size or patch")
        if teacher is not None and not 1 <= int(self.teacher_block) <= len(teacher.mae.dec_blocks):
            raise AnytaskError(f"teacher_block={self.teacher_block}: the teacher's decoder has "
                               f"{len(teacher.mae.dec_blocks)} blocks")
        gen = torch.Generator().manual_seed(int(self.seed))
        with torch.random.fork_rng():
            torch.manual_seed(int(self.seed) + 1)
            s = MAE(Xt.shape[1], int(self.patch), int(self.dim), int(self.depth), int(self.heads), int(self.dec_dim),
                    int(self.dec_depth), 4, len(self.classes_))
            width = teacher.mae.dec_embed.out_features if teacher is not None else 1
            predictor = nn.Sequential(nn.Linear(int(self.dec_dim), 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        B = int(self.batch_size)
        self.pretrain_loss_ = []
        if self.recipe in ("g2sd", "generic"):
            def step(g):
                i = torch.randint(len(Xt), (B,), generator=g)
                noise = mask_noise(B, s.n, g)  # one mask for teacher and student
                return generic_loss(s, predictor, teacher.mae, Xt[i], noise, int(self.teacher_block),
                                    bool(self.supervise_all))

            self.pretrain_loss_ = _train(list(s.parameters()) + list(predictor.parameters()), int(self.pretrain_steps),
                                         float(self.lr), step, gen, "generic distillation", self.progress)
        elif self.recipe == "mae":
            def step(g):
                i = torch.randint(len(Xt), (B,), generator=g)
                return mae_loss(s, Xt[i], mask_noise(B, s.n, g))

            self.pretrain_loss_ = _train(s.parameters(), int(self.pretrain_steps), float(self.lr), step, gen,
                                         "student MAE", self.progress)
        distil = teacher.classifier if self.recipe in ("g2sd", "specific") else None
        self.finetune_loss_ = finetune(s, Xt, yt, int(self.finetune_steps), float(self.lr), B, gen, teacher=distil,
                                       progress=self.progress)
        self.model_ = s.eval()
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        Xt = _images(X)
        with torch.no_grad():
            out = [sum(self.model_.classify(Xt[i:i + 512])) / 2 for i in range(0, len(Xt), 512)]
        return torch.cat(out).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]

    @property
    def n_parameters(self) -> int:
        """Parameters the classifier uses (encoder and heads; the decoder is dropped after training)."""
        check_is_fitted(self, "model_")
        return sum(p.numel() for n, p in self.model_.named_parameters() if not n.startswith(("dec_", "mask_token")))
