"""Beam search conditioned on a non-degenerate output (not empty, no repeated n-gram).

Yoshida 2024, Making the Most of your Model, https://arxiv.org/abs/2408.16241 (card 35), chapter on
"MAP's not dead yet" (https://arxiv.org/abs/2311.08817): the mode of an LM is often degenerate (the
empty string, a loop), yet the mode *conditioned on the output being acceptable* is good text.
Decoding maximises log p(y | x) + log p(A | x, y) with A = "not degenerate".

Here A is a known function of the finished text, so its log-probability is 0 or -inf there; for a
prefix, log p(A | x, y<=t) is -inf as soon as the prefix has repeated an n-gram (no continuation
can undo it) and an end-of-sequence before ``min_new_tokens`` is ruled out. The paper's learned
attribute classifier (for attributes only known at the end) is not implemented: for these two
rules the exact value is available at every step, so none is needed. ``condition=False`` runs the
same search unconstrained (plain MAP beam search), the baseline the comparison needs.

The search keeps ``beams`` hypotheses, expands each by its ``beams`` best allowed tokens, moves
hypotheses ending in EOS to the finished set, and stops once no live hypothesis can beat the best
finished one (log-probabilities only fall) or at ``max_new_tokens`` (live ones then count as
finished). Scores are summed log-probabilities (MAP, no length penalty).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def repeats_ngram(ids: list[int], n: int) -> bool:
    """Whether some n-gram occurs twice in ``ids``."""
    seen = set()
    for i in range(len(ids) - n + 1):
        gram = tuple(ids[i : i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


def is_degenerate(ids: list[int], *, min_new_tokens: int = 1, ngram: int = 3) -> bool:
    return len(ids) < min_new_tokens or repeats_ngram(ids, ngram)


@dataclass
class Hypothesis:
    ids: list[int]
    logp: float


def beam_search(lm, prompt: str, *, beams: int = 4, max_new_tokens: int = 24, condition: bool = True,
                min_new_tokens: int = 1, ngram: int = 3) -> Hypothesis:
    """The best continuation of ``prompt`` (token ids without EOS, and its log-probability)."""
    start = lm.encode(prompt, start=True)
    eos = lm.eos_id
    alive = [Hypothesis([], 0.0)]
    finished: list[Hypothesis] = []
    for step in range(max_new_tokens):
        logp = lm.next_token_logprobs([start + h.ids for h in alive])  # (B, V)
        candidates = []
        for h, row in zip(alive, logp):
            if condition and step < min_new_tokens and eos is not None:
                row = row.clone()
                row[eos] = float("-inf")
            order = torch.argsort(row, descending=True)
            taken = 0
            for tok in order.tolist():
                if taken == beams or row[tok] == float("-inf"):
                    break
                ids = h.ids + ([] if tok == eos else [tok])
                if condition and tok != eos and repeats_ngram(ids, ngram):
                    continue  # p(A | prefix) = 0: this prefix can never become acceptable
                candidates.append((Hypothesis(ids, h.logp + float(row[tok])), tok == eos))
                taken += 1
        candidates.sort(key=lambda c: -c[0].logp)
        alive = []
        for hyp, ended in candidates:
            if ended:
                finished.append(hyp)
            elif len(alive) < beams:
                alive.append(hyp)
        best_done = max((f.logp for f in finished), default=float("-inf"))
        if not alive or max(h.logp for h in alive) <= best_done:
            break
    pool = finished + alive
    if condition:
        pool = [h for h in pool if not is_degenerate(h.ids, min_new_tokens=min_new_tokens, ngram=ngram)] or pool
    return max(pool, key=lambda h: h.logp)
