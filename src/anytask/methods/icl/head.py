"""In-context head: a pre-trained reasoning module reads the labelled examples; no gradient step.

TART (Bhatia et al. 2023, https://arxiv.org/abs/2306.07536) and BraInCoRL (Yu et al. 2025,
https://arxiv.org/abs/2505.15813): ``fit`` runs the module once over the context and keeps
what it emitted (a linear head in the backbone's feature space plus a kernel-attention vote
over the context); ``predict_proba`` applies it. The module (:mod:`anytask.methods.icl.model`) reads
only inner products between examples, so it takes any feature width, any number of examples
per class from 1, and any number of classes natively (it is exactly equivariant to relabelling
classes and to reordering examples, so TabPFN-style permutation ensembles would change
nothing). It was pre-trained with 2 to 20 classes and up to 512 examples; larger contexts are
split into class-stratified chunks of at most ``max_context`` examples whose outputs are
averaged (documented, and reported as ``n_chunks_``).

``label_prior=m`` gives the module the label-name prior: each class's name, embedded by ``backbone``
(as the ``zero_shot`` head does; ``descriptions`` map terse labels to words), joins every context
(every chunk) as ``m`` more examples of its class (``m`` rounded to a whole number of copies).
Classes without names (numbers, no descriptions) are read without it, with a warning.
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead

SHIPPED = Path(__file__).resolve().parent / "weights"
LABEL_PRIOR = 0  # off by default: features of any backbone work; auto and the bench use 8 (see auto.NAMES_WEIGHT)


def module_path(name_or_path: str) -> Path:
    """A module folder: an existing path, then $ANYTASK_HOME/icl/<name>, then the shipped one."""
    from anytask.core import io

    return io.find_named(name_or_path, kind="in-context module", home_subdir="icl", shipped=SHIPPED,
                         hint="Reinstall anytask, or train one with `python -m anytask.methods.icl.train --out DIR` "
                              "and pass its folder")


def load_module(name_or_path: str = "classification"):
    from anytask.core import io
    from anytask.methods.icl.model import Reasoner

    return io.load_cached(module_path(name_or_path), Reasoner, "in-context reasoning module")


@HEADS.register("icl", reference="TART, Bhatia et al. 2023, https://arxiv.org/abs/2306.07536; "
                "BraInCoRL, Yu et al. 2025, https://arxiv.org/abs/2505.15813",
                summary="in-context: a module pre-trained on synthetic tasks reads the examples (and, with "
                        "label_prior, the embedded label names), no training",
                output="classes", saveable=True, label_names=True)
class ICLHead(BaseHead):
    """Few-shot classification by one forward pass of a pre-trained reasoning module."""

    _parameter_constraints = {"module": [str], "max_context": [Interval(Integral, 2, None, closed="left")],
                              "seed": [Integral], "label_prior": [Interval(Real, 0, None, closed="left")],
                              "descriptions": [dict, None], "backbone": [str], "cache_dir": [str, None]}

    def __init__(self, *, module: str = "classification", max_context: int = 2048, seed: int = 0,
                 label_prior: float = LABEL_PRIOR, descriptions: dict | None = None, backbone: str = "minilm",
                 cache_dir: str | None = None) -> None:
        self.module = module
        self.max_context = max_context
        self.seed = seed
        self.label_prior = label_prior
        self.descriptions = descriptions
        self.backbone = backbone
        self.cache_dir = cache_dir

    def _chunks(self, y: Tensor) -> list[Tensor]:
        """Class-stratified chunks of at most ``max_context`` examples, every class in every chunk."""
        n, C = len(y), len(self.classes_)
        if self.max_context < 2 * C:
            raise AnytaskError(f"max_context={self.max_context} cannot hold 2 examples of each of {C} classes; "
                               f"raise it to at least {2 * C}")
        if n <= self.max_context:
            return [torch.arange(n)]
        k = -(-n // self.max_context)  # number of chunks
        gen = torch.Generator().manual_seed(self.seed)
        parts = [[] for _ in range(k)]
        for c in range(C):
            members = torch.nonzero(y == c).squeeze(1)
            members = members[torch.randperm(len(members), generator=gen)]
            for j in range(k):  # a class with fewer than k examples repeats them across chunks
                share = members[j::k] if len(members) >= k else members[j % len(members)].reshape(1)
                parts[j].append(share)
        return [torch.cat(p) for p in parts]

    def _fit(self, X: Tensor, y: Tensor) -> None:
        model = load_module(self.module)
        if model.config.task != "classification":
            raise AnytaskError(f"module {self.module!r} is a {model.config.task} module; the icl head needs a "
                               "classification module (use anytask.methods.icl.regressor.ICLRegressor for regression)")
        from anytask.methods.heads.zero_shot import name_examples

        C = len(self.classes_)
        chunks = self._chunks(y)
        copies = int(round(self.label_prior))
        names = name_examples(self.classes_, copies, descriptions=self.descriptions, backbone=self.backbone,
                              cache_dir=self.cache_dir, owner="icl") if copies else None
        self.label_prior_used_ = names is not None
        if names is not None:  # m copies of every class's name join every chunk
            if names.shape[1] != X.shape[1]:
                raise AnytaskError(f"backbone {self.backbone!r} gives {names.shape[1]}-d label embeddings but X has "
                                   f"{X.shape[1]} features; pass the backbone that embedded X")
            extra = torch.arange(len(X), len(X) + copies * C)
            X = torch.cat([X, torch.from_numpy(names).to(X.dtype).repeat(copies, 1)])
            y = torch.cat([y, torch.arange(C).repeat(copies)])
            chunks = [torch.cat([idx, extra]) for idx in chunks]
        ctxs = []
        with torch.no_grad():
            for idx in chunks:
                Y = F.one_hot(y[idx], C).float()[None]
                ctxs.append(model.read_context(X[idx][None], Y))
        # Keep what prediction needs, in the backbone's feature space: the linear head folded
        # through the standardisation, plus the (standardised) context and its vote values.
        self.coef_ = torch.stack([(c["W"][0] / c["scale"][0]) for c in ctxs]).mean(0)  # (C, D)
        self.intercept_ = torch.stack([c["b"][0] - (c["mu"][0] @ c["W"][0].T)[0] / c["scale"][0, 0]
                                       for c in ctxs]).mean(0)  # (C,)
        self.context_ = torch.cat([X[idx] for idx in chunks])  # (n', D) raw features, chunk after chunk
        self.votes_ = torch.cat([c["votes"][0] for c in ctxs])  # (n', C)
        self.chunk_sizes_ = torch.tensor([len(i) for i in chunks])
        self.stats_ = torch.stack([torch.cat([c["mu"][0, 0], c["scale"][0, 0]]) for c in ctxs])  # (k, D+1)
        self.vote_temp_ = model.vote_temp.detach().clone().reshape(1)

    def _logits(self, X: Tensor) -> Tensor:
        # float64, so a row's scores do not depend on which other rows share the batch
        X, stats, context, votes_ = X.double(), self.stats_.double(), self.context_.double(), self.votes_.double()
        out = X @ self.coef_.double().T + self.intercept_.double()
        temp = self.vote_temp_.double()
        start, votes = 0, []
        for j, size in enumerate(self.chunk_sizes_.tolist()):
            mu, scale = stats[j, :-1], stats[j, -1]
            Z = (context[start:start + size] - mu) / scale
            A = torch.softmax(temp * (1 + np.log(size)) * ((X - mu) / scale) @ Z.T, dim=-1)
            votes.append(A @ votes_[start:start + size])
            start += size
        return out + torch.stack(votes).mean(0)

    def _tensors(self) -> dict[str, Tensor]:
        return {"coef": self.coef_, "intercept": self.intercept_, "context": self.context_, "votes": self.votes_,
                "chunk_sizes": self.chunk_sizes_, "stats": self.stats_, "vote_temp": self.vote_temp_}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.coef_, self.intercept_ = tensors["coef"], tensors["intercept"]
        self.context_, self.votes_ = tensors["context"], tensors["votes"]
        self.chunk_sizes_, self.stats_ = tensors["chunk_sizes"], tensors["stats"]
        self.vote_temp_ = tensors["vote_temp"]

    @property
    def n_chunks_(self) -> int:
        """How many class-stratified chunks the context was split into (1 when it fit)."""
        return len(self.chunk_sizes_)
