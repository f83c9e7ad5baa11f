"""Multi-view bag pretraining: attention-MIL per view, cross-view InfoNCE plus graph optimal transport (MADELEINE).

Jaume et al. 2024, "Multistain Pretraining for Slide Representation Learning in Pathology", ECCV 2024,
https://arxiv.org/abs/2408.02859 (card 13; written from the paper, the official code's licence forbids
derivatives). A bag (a slide) has one set of instance vectors (patch features) per view (stain). Each view has its
own encoder: an instance MLP, then multi-head gated attention pooling (ABMIL; each head's weights sum to 1 over
the bag's instances) and a projection to the slide embedding. Training, without labels:

    global: sum over views s != 0 of symmetric InfoNCE(slide_0, slide_s)        (temperature 0.1)
    local:  GOT(tokens_0, tokens_s) = Wasserstein + Gromov-Wasserstein between each view's most-attended
            instance embeddings (``max_tokens``), cost ReLU(cos distance - (min + 0.1 range)), solved by POT
            (``ot.sinkhorn2`` and ``ot.gromov.gromov_wasserstein2`` on torch tensors, so gradients flow)
    loss = global + local_weight * local

``objective="single_view"`` is the SimCLR-style baseline the paper compares against: two augmentations of view 0
(random half of the instances, feature noise) are the positives. ``local_weight=0`` is global-only. A missing
view (None) is left out of the loss for that bag, never zero-filled. ``transform`` embeds view 0 (every bag has
it) with the frozen encoder: unit vectors for the few-shot heads.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn
from torch.nn.functional import normalize
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.methods.alignment.base import BAG_ENCODERS, check_bags, info_nce


class ABMIL(nn.Module):
    """Instance MLP + multi-head gated attention pooling (Ilse et al. 2018) + projection."""

    def __init__(self, n_in: int, dim: int, heads: int) -> None:
        super().__init__()
        self.inst = nn.Sequential(nn.Linear(n_in, dim), nn.GELU(), nn.Linear(dim, dim))
        self.V, self.U = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.w = nn.Linear(dim, heads)
        self.proj = nn.Linear(heads * dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x`` ``(B, K, n_in)``, ``mask`` ``(B, K)`` True for real instances -> slide ``(B, dim)``, instance
        embeddings ``(B, K, dim)``, attention ``(B, heads, K)`` (each row sums to 1 over the real instances)."""
        h = self.inst(x)
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).transpose(1, 2)  # (B, H, K)
        att = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
        pooled = torch.einsum("bhk,bkd->bhd", att, h).flatten(1)
        return self.proj(pooled), h, att


def _pad(xs: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    k = max(len(x) for x in xs)
    out = torch.zeros(len(xs), k, xs[0].shape[1])
    mask = torch.zeros(len(xs), k, dtype=torch.bool)
    for i, x in enumerate(xs):
        out[i, :len(x)] = torch.from_numpy(x)
        mask[i, :len(x)] = True
    return out, mask


def got_loss(a: Tensor, b: Tensor, reg: float = 0.05) -> Tensor:
    """Graph optimal transport between two token sets ``(n, d)``, ``(m, d)``: entropic Wasserstein on the thresholded
    cosine cost plus Gromov-Wasserstein between the sets' own cosine-distance graphs, both by POT on torch."""
    from anytask.core.extras import require

    ot = require("ot", "signals", "MADELEINE's local (optimal transport) term")
    a, b = normalize(a, dim=-1), normalize(b, dim=-1)
    C = 1 - a @ b.T
    lo = C.min().detach()
    C = torch.relu(C - (lo + 0.1 * (C.max().detach() - lo)))
    p = torch.full((len(a),), 1 / len(a), dtype=a.dtype)
    q = torch.full((len(b),), 1 / len(b), dtype=b.dtype)
    w = ot.sinkhorn2(p, q, C, reg)
    gw = ot.gromov.gromov_wasserstein2(1 - a @ a.T, 1 - b @ b.T, p, q)
    return w + gw


@BAG_ENCODERS.register("madeleine", reference="MADELEINE, Jaume et al. 2024, https://arxiv.org/abs/2408.02859",
                       summary="ABMIL per view; cross-view InfoNCE + graph optimal transport (POT); frozen bag "
                               "embeddings for few-shot heads", input="features", output="embeddings", saveable=True)
class BagEncoder(Pretrained, TransformerMixin, BaseEstimator):
    def __init__(self, *, dim: int = 128, heads: int = 2, objective: str = "cross_view", local_weight: float = 0.5,
                 temperature: float = 0.1, max_tokens: int = 16, local_pairs: int = 16, epochs: int = 30,
                 batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0,
                 progress: bool = False) -> None:
        self.dim = dim
        self.heads = heads
        self.objective = objective
        self.local_weight = local_weight
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.local_pairs = local_pairs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.progress = progress

    def fit(self, bags, y=None):
        """Unsupervised: ``bags[i][s]`` the ``(instances, features)`` array of bag i's view s (None if missing)."""
        if self.objective not in ("cross_view", "single_view"):
            raise AnytaskError(f"objective={self.objective!r}; use 'cross_view' (MADELEINE) or 'single_view' (SimCLR)")
        bags = check_bags(bags, owner=type(self).__name__)
        views = {len(b) for b in bags}
        if len(views) != 1:
            raise AnytaskError(f"bags have different numbers of views {sorted(views)}; pass None for a missing view")
        self.n_views_ = views.pop()
        if self.objective == "cross_view" and self.n_views_ < 2:
            raise AnytaskError("cross_view pretraining needs at least 2 views per bag; use objective='single_view'")
        if len(bags) < 2:
            raise AnytaskError("contrastive pretraining needs at least 2 bags (the other bags are the negatives)")
        self.n_features_in_ = bags[0][0].shape[1]
        n_enc = self.n_views_ if self.objective == "cross_view" else 1
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.encoders_ = nn.ModuleList(ABMIL(self.n_features_in_, self.dim, self.heads) for _ in range(n_enc))
            rng = np.random.default_rng(self.seed)
            opt = torch.optim.AdamW(self.encoders_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            self.loss_curve_ = []
            for _ in tqdm(range(self.epochs), desc="BagEncoder fit", disable=not self.progress):
                total = 0.0
                perm = rng.permutation(len(bags))
                for start in range(0, len(bags), self.batch_size):
                    batch = [bags[i] for i in perm[start:start + self.batch_size]]
                    if len(batch) < 2:
                        continue
                    loss = self._cross_view(batch, rng) if self.objective == "cross_view" else \
                        self._single_view(batch, rng)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(batch)
                self.loss_curve_.append(total / len(bags))
        self.encoders_.eval().requires_grad_(False)
        return self

    def _encode(self, s: int, xs: list[np.ndarray]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, mask = _pad(xs)
        slide, h, att = self.encoders_[s](x, mask)
        return normalize(slide, dim=-1), h, att, mask

    def _tokens(self, h: Tensor, att: Tensor, mask: Tensor, i: int) -> Tensor:
        """Bag i's most-attended instance embeddings (at most ``max_tokens``): the local term's token set."""
        weight = att[i].mean(0).masked_fill(~mask[i], -1.0)
        k = min(self.max_tokens, int(mask[i].sum()))
        return h[i, weight.topk(k).indices]

    def _cross_view(self, batch, rng) -> Tensor:
        z0, h0, a0, m0 = self._encode(0, [b[0] for b in batch])
        loss = z0.new_zeros(())
        for s in range(1, self.n_views_):
            have = [i for i, b in enumerate(batch) if b[s] is not None]  # a missing stain: masked out, not zero-filled
            if len(have) < 2:
                continue
            zs, hs, as_, ms = self._encode(s, [batch[i][s] for i in have])
            loss = loss + info_nce(z0[have], zs, self.temperature)
            if self.local_weight > 0:
                pairs = rng.permutation(len(have))[:self.local_pairs]
                local = [got_loss(self._tokens(h0, a0, m0, have[j]).double(), self._tokens(hs, as_, ms, j).double())
                         for j in pairs]
                loss = loss + self.local_weight * torch.stack(local).mean().float()
        return loss

    def _augment(self, x: np.ndarray, rng) -> np.ndarray:
        keep = rng.random(len(x)) < 0.5
        if keep.sum() == 0:
            keep[rng.integers(len(x))] = True
        x = x[keep]
        return (x + 0.1 * x.std() * rng.normal(size=x.shape)).astype(np.float32)

    def _single_view(self, batch, rng) -> Tensor:
        za = self._encode(0, [self._augment(b[0], rng) for b in batch])[0]
        zb = self._encode(0, [self._augment(b[0], rng) for b in batch])[0]
        return info_nce(za, zb, self.temperature)

    def transform(self, bags) -> np.ndarray:
        """Unit slide embeddings ``(N, dim)`` of each bag's first view (the frozen encoder)."""
        check_is_fitted(self, "encoders_")
        bags = check_bags(bags, dim=self.n_features_in_, owner=type(self).__name__)
        out = []
        with torch.no_grad():
            for start in range(0, len(bags), 256):
                out.append(self._encode(0, [b[0] for b in bags[start:start + 256]])[0])
        return torch.cat(out).numpy()

    def attention(self, bag) -> np.ndarray:
        """Attention of each head over one bag's first-view instances ``(heads, instances)``; rows sum to 1."""
        check_is_fitted(self, "encoders_")
        b = check_bags([bag], dim=self.n_features_in_, owner=type(self).__name__)[0]
        with torch.no_grad():
            return self._encode(0, [b[0]])[2][0].numpy()

    # -- persistence (anytask.core.io) -------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "encoders_")
        return ({"n_features_in": int(self.n_features_in_), "n_views": int(self.n_views_),
                 "n_encoders": len(self.encoders_)},
                {f"enc.{k}": v for k, v in self.encoders_.state_dict().items()})

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "BagEncoder":
        m = cls(**params)
        m.n_features_in_, m.n_views_ = int(extra["n_features_in"]), int(extra["n_views"])
        m.encoders_ = nn.ModuleList(ABMIL(m.n_features_in_, m.dim, m.heads) for _ in range(int(extra["n_encoders"])))
        try:
            m.encoders_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("enc.")})
        except RuntimeError as e:
            raise AnytaskError(f"corrupted saved BagEncoder: {str(e)[:200]}") from None
        if not all(torch.isfinite(t).all() for t in tensors.values()):
            raise AnytaskError("corrupted saved BagEncoder: its tensors hold NaN or inf")
        m.encoders_.eval().requires_grad_(False)
        return m


@BAG_ENCODERS.register("mean_pool", reference="the mean-pooling baseline of multiple-instance learning",
                       summary="mean of a bag's first-view instance vectors (no training)", input="features",
                       output="embeddings", saveable=True)
class MeanPool(Pretrained, TransformerMixin, BaseEstimator):
    def fit(self, bags, y=None):
        bags = check_bags(bags, owner=type(self).__name__)
        self.n_features_in_ = bags[0][0].shape[1]
        return self

    def transform(self, bags) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        bags = check_bags(bags, dim=self.n_features_in_, owner=type(self).__name__)
        return np.stack([b[0].mean(0) for b in bags]).astype(np.float32)

    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "n_features_in_")
        return {"n_features_in": int(self.n_features_in_)}, {}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "MeanPool":
        m = cls(**params)
        m.n_features_in_ = int(extra["n_features_in"])
        return m
