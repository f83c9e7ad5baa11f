"""Aligning new signals with a frozen embedding space: the family's registries and shared pieces.

Two kinds of method live here, each with its own registry and contract:

* **modality mappers** (``MAPPERS``): ``fit(X, targets, captions=None)`` on vectors of a new signal and the frozen
  space's embeddings of what each signal was about; ``transform(X)`` gives unit vectors in that space, so the
  zero-shot head, indexes and every feature head work on the mapped signal (BrainCLIP).
* **bag encoders** (``BAG_ENCODERS``): ``fit(bags)`` on multi-view bags of instance vectors (slides x stains,
  documents x halves) without labels; ``transform(bags)`` gives one frozen embedding per bag for the few-shot
  heads (MADELEINE, and mean pooling as the baseline).

``info_nce`` is the symmetric in-batch contrastive loss both use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry
from anytask.core.validation import check_features

MAPPERS: Registry = Registry("modality mapper", family="alignment")
BAG_ENCODERS: Registry = Registry("bag encoder", family="alignment")


def info_nce(a: Tensor, b: Tensor, temperature: float, positives: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between row-aligned unit vectors ``a``, ``b`` ``(N, D)`` with in-batch negatives.
    ``positives`` ``(N, N)`` bool marks further pairs that are not negatives (rows sharing one caption): each row's
    loss is then ``-log`` of the softmax mass on all its positives (the diagonal always counts): SupCon's L_in,
    where retrieval's ``many_to_many_infonce`` (UWE) is L_out, the mean of ``-log p`` over the positives. Without
    ``positives`` both are the plain symmetric InfoNCE; the alignment benchmarks were measured with this form."""
    logits = a @ b.T / temperature
    if positives is None:
        target = torch.arange(len(a), device=a.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    pos = positives | torch.eye(len(a), dtype=torch.bool, device=a.device)

    def side(lg: Tensor, p: Tensor) -> Tensor:
        return (torch.logsumexp(lg, dim=1) - torch.logsumexp(lg.masked_fill(~p, float("-inf")), dim=1)).mean()

    return 0.5 * (side(logits, pos) + side(logits.T, pos.T))


def check_bags(bags, *, views: int | None = None, dim: int | None = None, owner: str = "this encoder",
               need_first: bool = True) -> list[list[np.ndarray | None]]:
    """Bags as ``[slide][view] -> (instances, dim) float32 or None``: a clear error for ragged views, empty bags,
    a wrong width, NaN. A single-view input (a list of arrays) is read as one view per bag."""
    if bags is None or len(bags) == 0:
        raise AnytaskError("no bags given; pass a list with one entry per bag: a list of views, each an "
                           "(instances, features) array (None for a missing view)")
    out = []
    for i, bag in enumerate(bags):
        if isinstance(bag, np.ndarray) or torch.is_tensor(bag):
            bag = [bag]
        bag = list(bag)
        if views is not None and len(bag) != views:
            raise AnytaskError(f"bag {i} has {len(bag)} view(s) but {owner} expects {views}; pass None for a missing "
                               "view rather than leaving it out")
        checked = []
        for s, x in enumerate(bag):
            if x is None:
                if s == 0 and need_first:
                    raise AnytaskError(f"bag {i} has no first view; the first view is the one every bag must have "
                                       "(it is the one embedded at transform time)")
                checked.append(None)
                continue
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[0] == 0:
                raise AnytaskError(f"bag {i}, view {s} has shape {x.shape}; every view is an (instances, features) "
                                   "array with at least one instance (drop empty bags or pass None for the view)")
            checked.append(check_features(x, name=f"bag {i} view {s}", n_features=dim, owner=owner))
        dims = {x.shape[1] for x in checked if x is not None}
        if len(dims) > 1:
            raise AnytaskError(f"bag {i} mixes views of widths {sorted(dims)}; every view must have the same width")
        if dim is None and dims:
            dim = dims.pop()
        out.append(checked)
    return out
