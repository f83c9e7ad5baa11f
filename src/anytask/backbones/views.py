"""Several views of each text from one frozen encoder: the mean-pooled token states of chosen layers.

``layer_embeddings(backbone, texts, layers=(2, 4, 6))`` returns ``(N, L, D)``: for each listed layer (1-based; 0
is the embedding layer) the token states pooled like the backbone pools and L2-normalised; the backbone's last
layer goes through its own ``pool`` (Dense layers, normalisation), so that view equals ``backbone.embed``
(tested). Multi-task methods that read layers (TaskExpert's memorial experts, DTRN's fields) take these.
Only Hugging Face encoders (``minilm``, ``hf:<folder>``) expose their layers; anything else is a clear error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from anytask.backbones.base import Backbone, pool_tokens
from anytask.core.errors import AnytaskError
from anytask.core.validation import check_texts


def layer_embeddings(backbone: Backbone, texts: Sequence[str], layers: Sequence[int] = (2, 4, 6), *,
                     batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """``(N, len(layers), D)`` float32: each text's pooled states at each layer (see the module docstring)."""
    model = getattr(backbone, "model", None)
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if model is None or n_layers is None:
        raise AnytaskError(f"{backbone.config.name} does not expose its layers; layer views need a Hugging Face "
                           "encoder (minilm or hf:<folder>)")
    bad = [layer for layer in layers if not 0 <= int(layer) <= n_layers]
    if bad or not layers:
        raise AnytaskError(f"layers {list(layers)}: pick from 0 (embeddings) to {n_layers} ({backbone.config.name} "
                           "has that many)")
    texts = check_texts(texts)
    mode = backbone.config.pooling.split("+")[0]
    out = np.empty((len(texts), len(layers), backbone.config.dim), np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc="layer views", disable=not progress):
        batch = texts[start:start + batch_size]
        inputs = backbone._tokenize_checked(batch)
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states   # L+1 x (B, T, D)
            mask = inputs["attention_mask"]
            for j, layer in enumerate(layers):
                if int(layer) == n_layers:
                    pooled = backbone.pool(hidden[layer], mask)
                else:
                    pooled = nn.functional.normalize(pool_tokens(hidden[layer], mask, mode), dim=-1)
                    if pooled.shape[-1] != backbone.config.dim:
                        raise AnytaskError(f"layer {layer} is {pooled.shape[-1]}-d but the backbone's embedding "
                                           f"{backbone.config.dim}-d (a Dense projection); use the last layer only")
                out[start:start + len(batch), j] = pooled.float().cpu().numpy()
    return out
