"""The "name" step of DN-CBM: a vocabulary from the unlabelled pool, one name per concept.

Each concept (SAE latent) gets the vocabulary entry whose embedding, put in the SAE's
normalised input space (centred on the pool mean), has the highest cosine with the
concept's decoder direction. The vocabulary is derived from the pool itself: frequent
words and frequent two-word phrases, minus stop words, so no outside word list is needed.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import torch
from torch.nn.functional import normalize

from anytask.core.errors import AnytaskError

STOP = set("""a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just let me more most my myself no nor not now
of off on once only or other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself yourselves also get got one two s t br
may might must shall us via like lrb rrb amp quot www http https com nbsp ve ll re isn aren wasn weren don doesn
didn won wouldn shouldn couldn can't i'm it's""".split())
_WORD = re.compile(r"[a-z][a-z']+[a-z]")


def build_vocabulary(texts: list[str], *, max_words: int = 6000, max_phrases: int = 2000,
                     min_count: int = 5) -> list[str]:
    """Frequent words (3+ letters) and two-word phrases of ``texts``, most frequent first."""
    words, phrases = Counter(), Counter()
    for text in texts:
        tokens = _WORD.findall(text.lower())
        words.update(t for t in tokens if t not in STOP and len(t) >= 3)
        phrases.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:])
                       if a not in STOP and b not in STOP and len(a) >= 3 and len(b) >= 3)
    vocab = [w for w, c in words.most_common(max_words) if c >= min_count]
    vocab += [p for p, c in phrases.most_common(max_phrases) if c >= min_count]
    if not vocab:
        raise AnytaskError(f"the vocabulary is empty: no word occurs {min_count}+ times in {len(texts)} texts; "
                           "pass more texts or a lower min_count")
    return vocab


@torch.no_grad()
def name_concepts(sae, vocab: list[str], vocab_embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Name and cosine score of each concept ``(h,)``."""
    if not vocab:
        raise AnytaskError("cannot name concepts with an empty vocabulary")
    V = torch.as_tensor(np.asarray(vocab_embeddings, dtype=np.float32))
    if V.shape != (len(vocab), sae.config.dim):
        raise AnytaskError(f"vocabulary embeddings have shape {tuple(V.shape)}; expected ({len(vocab)}, "
                           f"{sae.config.dim}) from the SAE's backbone")
    V = normalize(sae.normalize_input(V) - sae.b, dim=-1)  # (V, d) in the SAE's input space
    scores = sae.directions @ V.T  # (h, V)
    best = scores.max(dim=1)
    return [vocab[i] for i in best.indices.tolist()], best.values.numpy()


@torch.no_grad()
def top_activating(sae, X: np.ndarray, texts: list[str], *, k: int = 3, max_chars: int = 120) -> list[list[str]]:
    """The ``k`` pool texts that activate each concept most."""
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    best_val = torch.full((sae.config.n_latents, k), -1.0)
    best_idx = torch.zeros((sae.config.n_latents, k), dtype=torch.long)
    for start in range(0, len(X), 8192):
        F = sae.encode(X[start : start + 8192]).T  # (h, n)
        vals = torch.cat([best_val, F], dim=1)
        idx = torch.cat([best_idx, torch.arange(start, start + F.shape[1]).expand(F.shape[0], -1)], dim=1)
        top = vals.topk(k, dim=1)
        best_val, best_idx = top.values, idx.gather(1, top.indices)
    return [[texts[i][:max_chars] for i, v in zip(row_i, row_v) if v > 0]
            for row_i, row_v in zip(best_idx.tolist(), best_val.tolist())]
