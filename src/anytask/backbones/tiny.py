"""A tiny seeded random transformer: a real token-level backbone for fast tests.

Words are hashed into a fixed vocabulary (no tokenizer files), so the model is
built in milliseconds, fully deterministic given ``seed``, and exercises every code
path a real backbone does (padding, masks, truncation, token states).
"""

from __future__ import annotations

import re
import zlib

import torch
from torch import Tensor, nn

from anytask.backbones.base import Backbone, BackboneConfig

PAD, CLS, SEP, N_SPECIAL = 0, 1, 2, 3
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TinyBackbone(Backbone):
    """2-layer transformer with hashed word embeddings; random weights from ``seed``."""

    def __init__(self, *, seed: int = 0, dim: int = 32, layers: int = 2, heads: int = 4,
                 vocab: int = 2048, max_length: int = 64) -> None:
        super().__init__()
        self.vocab = vocab
        self.config = BackboneConfig(
            name=f"tiny:seed={seed}" if seed else "tiny", dim=dim, max_length=max_length,
            reference="random transformer for tests (no paper)",
        )
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.tokens = nn.Embedding(vocab, dim, padding_idx=PAD)
            self.positions = nn.Embedding(max_length, dim)
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
        finally:
            torch.random.set_rng_state(gen_state)
        self.freeze()

    def _ids(self, text: str) -> list[int]:
        words = _WORD.findall(text.lower())
        return [CLS] + [N_SPECIAL + zlib.crc32(w.encode()) % (self.vocab - N_SPECIAL) for w in words] + [SEP]

    def tokenize(self, texts: list[str]) -> tuple[dict[str, Tensor], int]:
        ids = [self._ids(t) for t in texts]
        limit = self.config.max_length
        n_truncated = sum(len(x) > limit for x in ids)
        ids = [x if len(x) <= limit else x[: limit - 1] + [SEP] for x in ids]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), PAD, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}, n_truncated

    def forward_tokens(self, inputs: dict[str, Tensor]) -> Tensor:
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.tokens(ids) + self.positions(pos)[None]  # (N, T, D)
        h = self.encoder(h, src_key_padding_mask=mask == 0)
        return self.norm(h)
