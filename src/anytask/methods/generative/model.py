"""The tiny patch transformer that infills a masked panel of a grid (VisualCloze's and IC-LoRA's stand-in for
FLUX.1-Fill): the canvas is cut into ``patch × patch`` tokens, the masked panel's tokens are a learned mask
token, every token gets a learned (row, column, position-in-panel) embedding, an optional text token carries a
prompt embedding (MiniLM), and a pre-LayerNorm transformer regresses the masked pixels.

The attention projections are plain ``nn.Linear`` modules named ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (and
the MLP's ``fc1``, ``fc2``) so PEFT's LoRA can target them by name.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from anytask.core.errors import AnytaskError


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.o_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))  # (B, heads, T, d/heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class PatchInfiller(nn.Module):
    """``forward(canvas (B, R*S, C*S), cell_mask (B, R, C) bool, text (B, text_dim) | None) -> (B, R*S, C*S)``:
    the whole canvas predicted; only the masked cells are trained and read."""

    def __init__(self, *, image_size: int = 16, patch: int = 4, dim: int = 128, depth: int = 4, heads: int = 4,
                 max_rows: int = 4, max_cols: int = 3, text_dim: int = 0) -> None:
        super().__init__()
        if image_size % patch:
            raise AnytaskError(f"image_size {image_size} is not a multiple of patch {patch}")
        if dim % heads:
            raise AnytaskError(f"dim {dim} is not a multiple of heads {heads}")
        self.image_size, self.patch, self.max_rows, self.max_cols = image_size, patch, max_rows, max_cols
        self.text_dim = text_dim
        n = (image_size // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.row_pos = nn.Parameter(torch.randn(max_rows, dim) * 0.02)
        self.col_pos = nn.Parameter(torch.randn(max_cols, dim) * 0.02)
        self.patch_pos = nn.Parameter(torch.randn(n, dim) * 0.02)
        self.no_text = nn.Parameter(torch.zeros(dim))  # the text slot when no prompt is given
        self.text_proj = nn.Linear(text_dim, dim) if text_dim else None
        self.blocks = nn.ModuleList(Block(dim, heads, 4 * dim) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch * patch)

    def check(self, canvas: Tensor, cell_mask: Tensor) -> tuple[int, int]:
        s = self.image_size
        if canvas.ndim != 3 or canvas.shape[1] % s or canvas.shape[2] % s:
            raise AnytaskError(f"canvas of shape {tuple(canvas.shape)} is not a batch of grids of {s}x{s} panels; "
                               f"this model was trained on {s}-pixel panels")
        rows, cols = canvas.shape[1] // s, canvas.shape[2] // s
        if rows > self.max_rows or cols > self.max_cols:
            raise AnytaskError(f"a {rows}x{cols} grid is larger than this model's {self.max_rows}x{self.max_cols}")
        if tuple(cell_mask.shape) != (canvas.shape[0], rows, cols):
            want = (canvas.shape[0], rows, cols)
            raise AnytaskError(f"cell mask has shape {tuple(cell_mask.shape)}; expected {want}")
        return rows, cols

    def forward(self, canvas: Tensor, cell_mask: Tensor, text: Tensor | None = None) -> Tensor:
        rows, cols = self.check(canvas, cell_mask)
        b, p, g = canvas.shape[0], self.patch, self.image_size // self.patch
        x = canvas.view(b, rows, g, p, cols, g, p).permute(0, 1, 4, 2, 5, 3, 6)  # (B, R, C, g, g, p, p)
        x = self.embed(x.reshape(b, rows, cols, g * g, p * p))  # (B, R, C, n, dim)
        x = torch.where(cell_mask[..., None, None], self.mask_token.expand_as(x), x)
        x = x + self.row_pos[:rows, None, None] + self.col_pos[None, :cols, None] + self.patch_pos
        x = x.reshape(b, rows * cols * g * g, -1)
        if text is not None and self.text_proj is None:
            raise AnytaskError("a text prompt was given but this model was trained without text (text_dim=0)")
        t = self.text_proj(text) if text is not None else self.no_text.expand(b, -1)
        x = torch.cat([t[:, None], x], dim=1)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.ln(x[:, 1:]))  # (B, R*C*n, p*p)
        out = out.view(b, rows, cols, g, g, p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return out.reshape(b, rows * g * p, cols * g * p)

