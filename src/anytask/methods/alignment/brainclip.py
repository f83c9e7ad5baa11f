"""A mapping network from a new signal into a frozen embedding space, trained against two targets (BrainCLIP).

Liu et al. 2023, "BrainCLIP: Bridging Brain and Visual-Linguistic Representation Via CLIP for Generic Natural
Visual Stimulus Decoding", https://arxiv.org/abs/2302.12971 (card 12). An MLP maps signal vectors (fMRI voxels in
the paper; any fixed-width vector here) to unit vectors ``z`` in the frozen space, trained with

    loss = lambda_i * InfoNCE(z, e_stimulus) + lambda_t * InfoNCE(z, e_caption)

(symmetric, in-batch negatives; rows that share a caption are not each other's negatives). Once fitted,
``transform`` puts new signals in the space of the frozen encoder, so zero-shot decoding is a cosine against
embedded class prompts (``anytask``'s zero_shot head on ``transform(X)``) and retrieval is an index search.
The paper leaves the network's size, temperature and weights open; defaults follow the card (MLP S -> 512 -> D)
with temperature 0.05 and equal weights. Inputs are standardised per feature with the training statistics.
``warm_start=True`` continues from the current weights (a second subject fine-tuned from the first); the
input statistics are always those of the data being fitted.
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
from anytask.core.validation import check_features
from anytask.methods.alignment.base import MAPPERS, info_nce


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))


@MAPPERS.register("brainclip", reference="BrainCLIP, Liu et al. 2023, https://arxiv.org/abs/2302.12971",
                  summary="MLP from a new signal into the frozen space; InfoNCE to the stimulus and to its caption",
                  input="features", output="embeddings", saveable=True)
class ModalityMapper(Pretrained, TransformerMixin, BaseEstimator):
    def __init__(self, *, hidden: int = 512, lambda_i: float = 1.0, lambda_t: float = 1.0, temperature: float = 0.05,
                 epochs: int = 40, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 1e-2,
                 dropout: float = 0.2, warm_start: bool = False, seed: int = 0, progress: bool = False) -> None:
        self.hidden = hidden
        self.lambda_i = lambda_i
        self.lambda_t = lambda_t
        self.temperature = temperature
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.warm_start = warm_start
        self.seed = seed
        self.progress = progress

    def _targets(self, T, n: int, name: str) -> Tensor:
        T = check_features(T, name=name, owner=type(self).__name__)
        if len(T) != n:
            raise AnytaskError(f"X has {n} rows but {name} has {len(T)}; give one target embedding per signal")
        return normalize(torch.from_numpy(T), dim=-1)

    def fit(self, X, targets=None, captions=None):
        """``X`` ``(N, S)`` signals; ``targets`` ``(N, D)`` the frozen space's embedding of each signal's stimulus
        (needed when ``lambda_i > 0``); ``captions`` ``(N, D)`` the embedding of its caption (when ``lambda_t > 0``)."""
        if self.lambda_i < 0 or self.lambda_t < 0 or self.lambda_i + self.lambda_t == 0:
            raise AnytaskError(f"lambda_i={self.lambda_i}, lambda_t={self.lambda_t}: both must be >= 0 and one > 0")
        X = check_features(X, owner=type(self).__name__)
        weighted = ((self.lambda_i, targets, "targets"), (self.lambda_t, captions, "captions"))
        need = [(w, T, name) for w, T, name in weighted if w > 0]
        for _, T, name in need:
            if T is None:
                raise AnytaskError(f"{name} is None but its weight is > 0; pass the {name} embeddings or set "
                                   f"lambda_{'i' if name == 'targets' else 't'}=0")
        terms = [(w, self._targets(T, len(X), name)) for w, T, name in need]
        dims = {t.shape[1] for _, t in terms}
        if len(dims) != 1:
            raise AnytaskError(f"targets and captions have different widths {sorted(dims)}; embed both with one "
                               "backbone")
        dim = dims.pop()
        if len(X) < 2:
            raise AnytaskError("a contrastive mapper needs at least 2 signals (each batch's other rows are its "
                               "negatives)")
        keep = self.warm_start and hasattr(self, "net_") and self.n_features_in_ == X.shape[1] and self.dim_ == dim
        self.mean_ = X.mean(0)  # this data's statistics, also when warm-starting (another subject's signals)
        self.scale_ = X.std(0) + 1e-6
        if not keep:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                self.net_ = _mlp(X.shape[1], self.hidden, dim, self.dropout)
        self.n_features_in_, self.dim_ = X.shape[1], dim
        Xs = torch.from_numpy((X - self.mean_) / self.scale_)
        net = self.net_.train().requires_grad_(True)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        batches = -(-len(X) // self.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.epochs * batches))
        gen = torch.Generator().manual_seed(self.seed)
        self.loss_curve_ = []
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            for _ in tqdm(range(self.epochs), desc="ModalityMapper fit", disable=not self.progress):
                total = 0.0
                for idx in torch.randperm(len(X), generator=gen).split(self.batch_size):
                    if len(idx) < 2:
                        continue
                    z = normalize(net(Xs[idx]), dim=-1)
                    loss = sum(w * info_nce(z, T[idx], self.temperature, positives=self._same(T[idx]))
                               for w, T in terms)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(idx)
                self.loss_curve_.append(total / len(X))
        net.eval().requires_grad_(False)
        return self

    @staticmethod
    def _same(T: Tensor) -> Tensor | None:
        """Rows whose targets coincide (one caption shared by a class): not each other's negatives."""
        same = (T @ T.T) > 1 - 1e-6
        return same if same.sum() > len(T) else None

    def transform(self, X) -> np.ndarray:
        """Unit vectors ``(N, D)`` in the frozen space."""
        check_is_fitted(self, "net_")
        X = check_features(X, n_features=self.n_features_in_, owner=type(self).__name__)
        with torch.no_grad():
            return normalize(self.net_(torch.from_numpy((X - self.mean_) / self.scale_)), dim=-1).numpy()

    # -- persistence (anytask.core.io) -------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "net_")
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        tensors.update(mean=torch.from_numpy(self.mean_), scale=torch.from_numpy(self.scale_))
        return {"n_features_in": int(self.n_features_in_), "dim": int(self.dim_)}, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "ModalityMapper":
        m = cls(**params)
        m.n_features_in_, m.dim_ = int(extra["n_features_in"]), int(extra["dim"])
        try:
            m.net_ = _mlp(m.n_features_in_, m.hidden, m.dim_, m.dropout)
            m.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            m.mean_, m.scale_ = tensors["mean"].numpy(), tensors["scale"].numpy()
        except (KeyError, RuntimeError) as e:
            raise AnytaskError(f"corrupted saved ModalityMapper: {type(e).__name__}: {str(e)[:200]}") from None
        if m.mean_.shape != (m.n_features_in_,) or not all(torch.isfinite(t).all() for t in tensors.values()):
            raise AnytaskError("corrupted saved ModalityMapper: its statistics do not fit its width or hold NaN")
        m.net_.eval().requires_grad_(False)
        return m
