"""Leave-one-out ("LOO") context embeddings for token-level backbones (TART's protocol).

TART (https://arxiv.org/abs/2306.07536) embeds in-context example ``i`` at the end of a
prompt made of the other examples with their labels, so that every example has seen as much
context as the query; the query's prompt is the full context. The embedding is the mean
(pooled like the backbone's own embeddings) over the tokens of the last text only. Prompts
longer than the backbone takes drop their earliest examples first. For a sentence encoder
such as MiniLM this is an option, not the default: it was built for causal LMs, whose text
embeddings only see what came before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from anytask.backbones.base import Backbone, check_texts
from anytask.core.errors import AnytaskError


def _segment_embedding(backbone: Backbone, prefix: list[str], text: str, sep: str) -> np.ndarray:
    (n_own,) = backbone.tokenize([text])[0]["attention_mask"].sum(1).tolist()
    n_own -= 2  # the text's own tokens, without its start and end markers
    if n_own <= 0:
        raise AnytaskError(f"text {text!r} has no tokens for this backbone")
    prefix = list(prefix)
    while True:
        prompt = sep.join([*prefix, text])
        inputs, truncated = backbone.tokenize([prompt])
        if not truncated or not prefix:
            break
        prefix.pop(0)  # too long: drop the earliest example
    states = backbone.forward_tokens({k: v.to(backbone.device) for k, v in inputs.items()})
    end = int(inputs["attention_mask"][0].sum()) - 1  # position of the end marker
    start = max(1, end - n_own)
    seg = states[0, start:end]
    # pooled as the backbone pools (its mode(s), Dense layers, normalisation) over the segment's tokens alone
    pooled = backbone.pool(seg.unsqueeze(0), torch.ones(1, len(seg), dtype=torch.long, device=seg.device))[0]
    return pooled.float().cpu().numpy()


def loo_embeddings(backbone: Backbone, texts: Sequence[str], labels: Sequence, queries: Sequence[str] = (),
                   *, template: str = "{text} => {label}", sep: str = " ; ", seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Context embeddings (k, D) in leave-one-out prompts and query embeddings (m, D) after the
    full context. The context order is shuffled once with ``seed`` (TART shuffles explicitly)."""
    texts = check_texts(texts)
    labels = list(labels)
    if len(labels) != len(texts):
        raise AnytaskError(f"{len(texts)} texts but {len(labels)} labels; they must match")
    queries = check_texts(queries) if len(queries) else []
    order = np.random.default_rng(seed).permutation(len(texts))
    shown = {int(i): template.format(text=texts[i], label=labels[i]) for i in order}
    with torch.no_grad():
        ctx = [_segment_embedding(backbone, [shown[int(j)] for j in order if j != i], texts[i], sep)
               for i in range(len(texts))]
        qry = [_segment_embedding(backbone, [shown[int(j)] for j in order], q, sep) for q in queries]
    dim = backbone.config.dim
    return np.asarray(ctx, np.float32).reshape(-1, dim), np.asarray(qry, np.float32).reshape(-1, dim)
