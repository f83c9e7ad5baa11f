"""In-context generation on small images: the family's registries and shared pieces.

Three kinds of method, each with its own registry and contract:

* **infillers** (``INFILLERS``): ``fit(tasks)`` trains a masked-panel infiller on grids of (condition, target)
  rows of procedural image tasks; ``infill(grids, prompts=None)`` returns the missing panel of each grid
  (VisualCloze: unseen tasks from in-context rows).
* **infiller adapters** (``ADAPTERS``): ``fit(canvases, caption=...)`` tunes a copy of a trained infiller on a few
  dozen canvases of a new relation and infills like it (IC-LoRA; full fine-tuning as the baseline mode). The
  infiller they start from is never changed.
* **scene readers** (``READERS``): ``fit(scenes)`` / ``predict(scenes)`` answer a question about a scene given as
  coarse tokens with hidden fine tokens (LSceneLLM's attention-guided magnifier, coarse-only and all-fine
  baselines).

``canvases`` turns grids (``anytask.data.images.pack``) into the tensors the patch transformer reads.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry
from anytask.data.images import pack

INFILLERS: Registry = Registry("infiller", family="generative")
ADAPTERS: Registry = Registry("infiller adapter", family="generative")
READERS: Registry = Registry("scene reader", family="generative")


def canvases(grids, image_size: int) -> tuple[Tensor, Tensor, tuple[int, int]]:
    """Grids of one layout → canvas ``(N, R*S, C*S)``, cell mask ``(N, R, C)`` and ``(R, C)``; clear errors for
    mixed layouts or panels of another size than the model's."""
    if grids is None or len(grids) == 0:
        raise AnytaskError("no grids given; pass a list of grids (rows of panels, the one to infill None)")
    packed = [pack(g) for g in grids]
    layouts = {(len(g), len(g[0])) for g in grids}
    if len(layouts) != 1:
        raise AnytaskError(f"grids of several layouts {sorted(layouts)} in one call; infill one layout at a time")
    rows, cols = layouts.pop()
    canvas = np.stack([c for c, _ in packed])
    if canvas.shape[1:] != (rows * image_size, cols * image_size):
        h, w = canvas.shape[1] // rows, canvas.shape[2] // cols
        raise AnytaskError(f"panels are {h}x{w} pixels but this model works on {image_size}x{image_size}; "
                           f"resize the images (anytask.data.images.mnist_images shows how) or train at {h} px")
    mask = torch.from_numpy(np.stack([m for _, m in packed]))
    cells = mask.view(len(grids), rows, image_size, cols, image_size)[:, :, 0, :, 0]
    return torch.from_numpy(canvas), cells, (rows, cols)


def check_prompts(prompts, n: int) -> list[str] | None:
    if prompts is None:
        return None
    if isinstance(prompts, str):
        prompts = [prompts] * n
    prompts = list(prompts)
    if len(prompts) != n or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise AnytaskError(f"prompts: give one non-empty text per grid ({n}), one text for all, or None")
    return prompts


def masked_mse(pred: Tensor, truth: Tensor, cells: Tensor, image_size: int) -> Tensor:
    """Mean squared error over the masked panels only (pixels elsewhere are not read)."""
    b, rows, cols = cells.shape
    m = cells[:, :, None, :, None].expand(b, rows, image_size, cols, image_size).reshape(pred.shape)
    return ((pred - truth) ** 2)[m].mean()
