"""Contrastive few-shot tuning of the encoder's top layers, then a linear head (SetFit's recipe, faster).

SetFit (Tunstall et al. 2022, https://arxiv.org/abs/2209.11055): fine-tune a sentence encoder so
that texts of one class have cosine similarity 1 and texts of different classes 0 (a squared error
on pairs drawn from the labelled examples), then fit logistic regression on the tuned embeddings.

What differs here, for speed (the same objective and the same head):

* only the top ``n_top`` layers are tuned, on a copy (:class:`anytask.backbones.split.SplitEncoder`);
  the frozen states below them are computed once per training text, so a step costs ``n_top``
  layers of forward and backward, not the whole encoder;
* every step scores **all** pairs within a batch of ``batch_size`` texts (496 pairs for 32 texts,
  from one forward pass of 32 texts) instead of 16 sampled pairs from 32 forward passes; the mean
  error over same-class pairs and over different-class pairs are weighted equally, which is what
  SetFit's balanced pair sampling does;
* ``max_steps`` (20) steps in all, the learning rate 3e-4 decaying linearly to 0, and training
  stops early once every same-class pair of the support set is closer than every different-class
  pair by ``margin`` (checked every ``check_every`` steps on up to 256 support texts). These
  defaults were chosen on held-out rows of the *training* splits of the shared tasks (see
  ``docs/results/heads.md``), never on their test splits.

The head is :class:`~anytask.methods.heads.linear_probe.LinearProbe` (temperature-calibrated) on the
tuned embeddings and, with ``keep_frozen`` (default), the frozen embeddings beside them: on held-out
training rows of banking77 (77 classes, 8 per class) 20 steps of pair tuning alone lost 3.5 points to
the frozen probe, and the concatenation gained 1.5 over it, while costing nothing measurable on ag_news.
``sampling="classes"`` draws batches of a few classes with several examples each (so that many-class
tasks have same-class pairs in every batch); the default ``"random"`` draws texts at random. The backbone is never written (a test hashes it); the saved folder holds the tuned
layers and the head, and loading checks the backbone's identity.

Classes with one example have no same-class pair: they still take part through every different-class
pair (they are pushed away from the others), and the head learns them from their one embedding. A task
where *no* class has two examples has no same-class pair at all; the encoder is then left as it is and
the head is fitted on the frozen embeddings (``tuned_ = False``, with a warning).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.validation import check_raw_texts, check_text_labels
from anytask.methods.heads.base import HEADS


def pair_loss(emb: Tensor, y: Tensor) -> Tensor:
    """SetFit's cosine-similarity loss over every pair in the batch, same- and different-class pairs weighted
    equally: mean (cos - 1)^2 over same-class pairs + mean cos^2 over different-class pairs."""
    e = F.normalize(emb, dim=-1)
    sim = e @ e.T  # (B, B)
    same = y[:, None] == y[None, :]
    upper = torch.triu(torch.ones_like(same), diagonal=1)
    pos, neg = same & upper, ~same & upper
    loss = sim.new_zeros(())
    if pos.any():
        loss = loss + ((sim[pos] - 1) ** 2).mean()
    if neg.any():
        loss = loss + (sim[neg] ** 2).mean()
    return loss


def separation(emb: Tensor, y: Tensor) -> float:
    """Smallest same-class cosine minus largest different-class cosine over the whole set (> 0: separated)."""
    e = F.normalize(emb, dim=-1)
    sim = e @ e.T
    same = y[:, None] == y[None, :]
    off = ~torch.eye(len(y), dtype=torch.bool, device=sim.device)
    pos, neg = sim[same & off], sim[~same]
    if not len(pos) or not len(neg):
        return float("inf")
    return float(pos.min() - neg.max())


@HEADS.register("contrastive", reference="SetFit, Tunstall et al. 2022, https://arxiv.org/abs/2209.11055",
                summary="SetFit's contrastive pair tuning on a copy of the encoder's top layers (lower states cached), "
                        "then a calibrated linear probe",
                input="texts", output="classes", saveable=True, needs_backbone=True, learned=True)
class ContrastiveHead(Pretrained, ClassifierMixin, BaseEstimator):
    """Raw texts in (``fit(texts, y)``); tunes a copy of the top layers, then fits a linear probe."""

    def __init__(self, *, backbone: str = "minilm", n_top: int = 2, max_steps: int = 20, batch_size: int = 32,
                 lr: float = 3e-4, check_every: int = 5, margin: float = 0.8, max_length: int = 64,
                 sampling: str = "random", keep_frozen: bool = True, max_seconds: float | None = None, seed: int = 0,
                 progress: bool = False, device: str = "auto") -> None:
        self.backbone = backbone
        self.n_top = n_top
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.check_every = check_every
        self.margin = margin
        self.max_length = max_length
        self.sampling = sampling
        self.keep_frozen = keep_frozen
        self.max_seconds = max_seconds
        self.seed = seed
        self.progress = progress
        self.device = device

    # -- checks --------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name, lo in (("max_steps", 1), ("batch_size", 2), ("check_every", 1), ("max_length", 2)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise AnytaskError(f"{name}={v!r}: pass an integer >= {lo}")
        for name in ("lr", "margin"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or (name == "lr" and v <= 0):
                raise AnytaskError(f"{name}={v!r}: pass a finite number" + (" > 0" if name == "lr" else ""))
        if self.sampling not in ("random", "classes"):
            raise AnytaskError(f"sampling={self.sampling!r}: use 'random' (batches drawn at random) or 'classes' "
                               "(a few classes per batch, several examples each)")
        if self.max_seconds is not None and not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise AnytaskError(f"max_seconds={self.max_seconds!r}: pass a positive number of seconds, or None")

    def _split(self):
        from anytask.backbones import get_backbone
        from anytask.backbones.split import SplitEncoder

        return SplitEncoder(get_backbone(self.backbone, device=self.device), int(self.n_top), int(self.max_length))

    # -- fit -------------------------------------------------------------------------------------------
    def fit(self, X, y):
        from anytask.methods.heads.linear_probe import LinearProbe

        self._check_params()
        texts = check_raw_texts(X, "the contrastive head")
        classes, y_idx = check_text_labels(texts, y)
        self.classes_ = classes
        split = self._split()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        lower = split.lower(texts)
        targets = torch.as_tensor(y_idx, dtype=torch.long, device=split.device)
        counts = np.bincount(y_idx, minlength=len(classes))
        self.history_, self.tuned_, start = [], bool(counts.max() >= 2), time.perf_counter()
        if not self.tuned_:
            warnings.warn("no class has two examples, so there is no same-class pair to tune on: the encoder is left "
                          "as it is and the linear probe is fitted on the frozen embeddings", stacklevel=2)
        else:
            self._tune(split, lower, targets, rng, start)
        self.n_steps_ = sum(h["steps"] for h in self.history_)
        self.fit_seconds_tuning_ = round(time.perf_counter() - start, 3)
        self._split_ = split
        self.head_ = LinearProbe().fit(self._embed_lower(split, lower), y)
        return self

    def _tune(self, split, lower: list[Tensor], targets: Tensor, rng, start: float) -> None:
        from tqdm.auto import tqdm

        n, bs, total = len(lower), min(int(self.batch_size), len(lower)), int(self.max_steps)
        # the separation check reads at most 256 support texts (all of them on a small support set)
        probe = np.sort(rng.choice(n, size=min(n, 256), replace=False))
        top = split.top
        opt = torch.optim.AdamW([p for p in top.parameters() if p.requires_grad], lr=float(self.lr),
                                weight_decay=0.01)
        batches = (_class_batches(targets.cpu().numpy(), bs, rng) if self.sampling == "classes" else _batches(n, bs, rng))
        bar = tqdm(total=total, desc="contrastive", disable=not self.progress)
        self.stopped_, last = "max_steps", 0
        for step in range(total):
            top.train()  # dropout on, as in SetFit's fine-tuning
            for g in opt.param_groups:  # linear decay to 0, as SetFit's trainer
                g["lr"] = float(self.lr) * (1 - step / total)
            idx = next(batches)
            loss = pair_loss(split.pooled([lower[i] for i in idx]), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            if (step + 1) % int(self.check_every) and step + 1 < total:
                continue
            top.eval()
            with torch.no_grad():
                emb = torch.cat([split.pooled([lower[i] for i in probe[b:b + 128]]) for b in range(0, len(probe), 128)])
            sep = separation(emb, targets[probe])
            self.history_.append({"steps": step + 1 - last, "step": step + 1, "loss": round(loss.item(), 5),
                                  "separation": round(sep, 4), "seconds": round(time.perf_counter() - start, 2)})
            last = step + 1
            if sep >= self.margin:
                self.stopped_ = "separated"
                break
            if self.max_seconds is not None and time.perf_counter() - start > self.max_seconds:
                self.stopped_ = "max_seconds"
                break
        bar.close()
        top.eval()

    @torch.no_grad()
    def _embed_lower(self, split, lower: list[Tensor], batch_size: int = 64) -> np.ndarray:
        """Tuned embeddings of lower states; with ``keep_frozen``, the frozen embeddings beside them."""
        split.top.eval()
        tops = [split.top, split.frozen_top] if self.keep_frozen else [split.top]
        return torch.cat([torch.cat([split.pooled(lower[i:i + batch_size], top) for top in tops], 1)
                          for i in range(0, len(lower), batch_size)]).cpu().numpy()

    # -- predict -----------------------------------------------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """The tuned embeddings ``(N, D)`` of raw texts."""
        check_is_fitted(self, "head_")
        texts = check_raw_texts(X, "the contrastive head")
        split = self._split_
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
        out = np.empty((len(texts), self.head_.n_features_in_), dtype=np.float32)
        for s in range(0, len(texts), 64):
            idx = order[s:s + 64]
            out[idx] = self._embed_lower(split, split.lower([texts[i] for i in idx]))
        return out

    def predict_proba(self, X) -> np.ndarray:
        return self.head_.predict_proba(self.transform(X))

    def decision_function(self, X) -> np.ndarray:
        return self.head_.decision_function(self.transform(X))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- persistence (anytask.core.io) -----------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "head_")
        head_extra, head_tensors = self.head_._get_state()
        tensors = {f"head.{k}": v for k, v in head_tensors.items()}
        tensors.update({f"top.{k}": v for k, v in self._split_.top_state().items()})
        extra = {"classes": self.classes_.tolist(), "head_extra": head_extra,
                 "backbone_identity": self._split_.backbone.identity, "tuned": self.tuned_}
        return extra, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "ContrastiveHead":
        from anytask.methods.heads.linear_probe import LinearProbe

        head = cls(**{**params, "device": "auto"})  # the saving machine's device may not exist here
        classes = extra["classes"]
        head.classes_ = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else None)
        split = head._split()
        if split.backbone.identity != extra["backbone_identity"]:
            raise AnytaskError(f"this contrastive head was tuned on backbone {extra['backbone_identity']}, but "
                               f"{head.backbone!r} now resolves to {split.backbone.identity}; refit it")
        split.load_top_state({k[4:]: v for k, v in tensors.items() if k.startswith("top.")})
        head._split_, head.tuned_ = split, bool(extra.get("tuned", True))
        head.head_ = LinearProbe._from_state({}, extra["head_extra"],
                                             {k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        return head


def _batches(n: int, size: int, rng: np.random.Generator):
    """Index batches of ``size`` from successive shuffles of ``range(n)``, forever (a short last batch is
    topped up from the next shuffle, so every step sees ``size`` texts)."""
    carry = np.empty(0, dtype=np.int64)
    while True:
        order = np.concatenate([carry, rng.permutation(n)])
        while len(order) >= size:
            yield order[:size]
            order = order[size:]
        carry = order


def _class_batches(y: np.ndarray, size: int, rng: np.random.Generator):
    """Batches of a few classes with several examples each (P classes x m examples, m = max(2, size // C)),
    so that every batch holds same-class pairs however many classes there are; forever."""
    classes = np.unique(y)
    members = {c: np.flatnonzero(y == c) for c in classes}
    m = max(2, size // len(classes))
    p = max(1, min(len(classes), size // m))
    while True:
        chosen = rng.choice(classes, size=p, replace=False)
        yield np.concatenate([rng.choice(members[c], size=min(m, len(members[c])), replace=False) for c in chosen])
