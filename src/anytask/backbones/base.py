"""The frozen backbone contract: raw texts in, (N, D) embeddings or (N, T, D) token states out.

A backbone is an ``nn.Module`` whose parameters never change: they are created with
``requires_grad=False``, the module stays in eval mode, and ``weights_hash`` fingerprints
them (the embedding cache keys on it, and the test suite checks it before and after
every ``fit``). Methods that adapt the model (prompt tuning, fine-tuning, merging)
build new modules around or beside it; they never write into it.
"""

from __future__ import annotations

import hashlib
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import torch
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_texts  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class BackboneConfig:
    name: str
    dim: int
    max_length: int
    reference: str = ""
    pooling: str = "mean"  # one of POOLING_MODES, or several joined by "+" (their outputs concatenated)
    normalize: bool = True
    prompt: str = ""  # prepended to every text (a sentence-transformers folder's default prompt)


# sentence-transformers' pooling modes (its Pooling module), computed the same way
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def state_hash(module: nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        _hash_value(h, name, value)
    return h.hexdigest()


def _hash_value(h, name: str, value) -> None:
    """One state-dict entry into ``h``: a tensor's bytes (a quantised one's integers, scales and zero points);
    the tuples and dtypes a quantised module stores, item by item."""
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _hash_value(h, f"{name}.{i}", item)
        return
    if not isinstance(value, torch.Tensor):
        h.update(f"{name}|{value!r}".encode())
        return
    t = value.detach().cpu()
    if t.is_quantized:
        scales = t.q_per_channel_scales() if t.qscheme() in (torch.per_channel_affine,
                                                            torch.per_channel_symmetric) else torch.tensor(t.q_scale())
        _hash_value(h, f"{name}.scale", scales.double())
        t = t.int_repr()
    t = t.contiguous()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def pool_tokens(states: Tensor, mask: Tensor, mode: str) -> Tensor:
    """One pooling mode over token states ``(N, T, D)`` with mask ``(N, T)``, as sentence-transformers computes it
    (left or right padding): the first or last real token, the max, the mean, the sum over sqrt(length), or the
    mean weighted by position (1, 2, ... from the first real token)."""
    m = mask.unsqueeze(-1).to(states.dtype)  # (N, T, 1)
    if mode == "mean":
        return (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
    if mode == "mean_sqrt_len_tokens":
        return (states * m).sum(1) / torch.sqrt(m.sum(1).clamp_min(1e-9))
    if mode == "max":
        return states.masked_fill(m == 0, float("-inf")).max(1).values
    if mode == "cls":
        first = mask.to(torch.int).argmax(1)  # 0 with right padding
        return states[torch.arange(len(states), device=states.device), first]
    if mode == "lasttoken":
        values, flipped = mask.flip(1).max(1)
        last = states.shape[1] - 1 - torch.where(values == 0, states.shape[1] - 1, flipped)
        return (states * m)[torch.arange(len(states), device=states.device), last]
    if mode == "weightedmean":
        weights = torch.arange(1, states.shape[1] + 1, device=states.device, dtype=states.dtype).view(1, -1, 1)
        weights = weights - mask.to(torch.int32).argmax(1).view(-1, 1, 1).to(states.dtype)
        w = m * weights
        return (states * w).sum(1) / w.sum(1).clamp_min(1e-9)
    raise AnytaskError(f"unknown pooling {mode!r}; use one of {', '.join(POOLING_MODES)}")


class Backbone(nn.Module, ABC):
    """Abstract frozen encoder. Subclasses implement ``tokenize`` and ``forward_tokens``."""

    config: BackboneConfig

    def __init__(self) -> None:
        super().__init__()
        self._warned_truncation = False

    # -- what subclasses provide -------------------------------------------------
    @abstractmethod
    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        """Padded model inputs (with ``attention_mask``) and how many texts were truncated."""

    @abstractmethod
    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        """Token states ``(N, T, D)`` for tokenized inputs."""

    # -- frozen by contract --------------------------------------------------------
    def freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "Backbone":  # noqa: D401 - nn.Module API
        """A backbone stays in eval mode: dropout never changes its embeddings."""
        return super().train(False)

    @cached_property
    def weights_hash(self) -> str:
        return state_hash(self)

    @property
    def identity(self) -> str:
        """What the embedding cache keys on: name, weights, truncation length, pooling."""
        c = self.config
        prompt = f"|prompt={hashlib.sha256(c.prompt.encode()).hexdigest()[:12]}" if c.prompt else ""
        return f"{c.name}|w={self.weights_hash[:20]}|len={c.max_length}|pool={c.pooling}|norm={c.normalize}{prompt}"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- the public API ------------------------------------------------------------
    def _tokenize_checked(self, texts: list[str]) -> dict[str, Tensor]:
        inputs, n_truncated = self.tokenize(texts)
        if n_truncated and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(
                f"{n_truncated} text(s) are longer than {self.config.name}'s limit of "
                f"{self.config.max_length} tokens and were truncated (warned once per backbone)",
                stacklevel=3,
            )
        return {k: v.to(self.device) for k, v in inputs.items()}

    def pool(self, states: Tensor, mask: Tensor) -> Tensor:
        """Token states ``(N, T, D)`` -> one vector per text: the pooling mode(s), then ``project`` (a
        sentence-transformers folder's Dense layers), then L2 normalisation when configured."""
        pooled = torch.cat([pool_tokens(states, mask, mode) for mode in self.config.pooling.split("+")], dim=-1)
        pooled = self.project(pooled)
        return nn.functional.normalize(pooled, dim=-1) if self.config.normalize else pooled

    def project(self, pooled: Tensor) -> Tensor:
        """What follows pooling (a folder's Dense layers); none by default."""
        return pooled

    def embed_tokens(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token states ``(N, T, D)`` and attention mask ``(N, T)`` for one batch of texts."""
        texts = check_texts(texts)
        inputs = self._tokenize_checked(texts)
        with torch.no_grad():
            return self.forward_tokens(inputs), inputs["attention_mask"]

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> Tensor:
        """Pooled embeddings ``(N, D)`` on the CPU, batched by length for speed; no cache (see Embedder). On an
        accelerator a batch that runs out of memory is split in half and retried (down to one text)."""
        texts = check_texts(texts)
        out = torch.empty(len(texts), self.config.dim)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        start = 0
        while start < len(texts):
            idx = order[start : start + batch_size]
            try:
                inputs = self._tokenize_checked([texts[i] for i in idx])
                with torch.no_grad():
                    states = self.forward_tokens(inputs)  # (B, T, D)
                    out[idx] = self.pool(states, inputs["attention_mask"]).float().cpu()
            except torch.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                warnings.warn(f"{self.config.name}: out of memory on {self.device}; batches of {batch_size} from "
                              "here on", stacklevel=2)
                continue
            start += len(idx)
        return out
