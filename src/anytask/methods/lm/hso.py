"""Hidden-state optimisation (HSO): adapt a frozen LM to the text it has read by gradient steps on its
cached keys and values, never on its weights.

Yoshida & Gimpel 2021, Reconsidering the Past: Optimizing Hidden States in Language Models,
https://arxiv.org/abs/2112.08653; collected in Yoshida 2024, Making the Most of your Model,
https://arxiv.org/abs/2408.16241 (card 35).

``optimise_cache(lm, ids)`` adds a learnable offset to the keys and values every attention layer
computes at each position of ``ids`` (``CausalLM.kv_offsets``: the cache the next tokens read)
and takes ``steps`` Adam steps on the mean negative log-likelihood of ``ids`` itself. The loss is
recorded *before* each update (the honest evaluation the paper insists on), plus once after the
last. Few-shot use (``LMPromptHead(hso_steps=n)``): the cache is the prompt's demonstrations, the
loss their likelihood, labels included; the test text is then read against the optimised cache.
Language-modelling use (``segment_nll``): segment i's cache is optimised on segment i, then
segment i + 1 is scored against it, with and without the update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class HSOResult:
    deltas: list[tuple[Tensor, Tensor]]  # per layer: (key offsets (P, Dk), value offsets (P, Dv))
    losses: list[float]                  # NLL before each step, then after the last


def optimise_cache(lm, ids: list[int], *, steps: int = 3, lr: float = 1e-2) -> HSOResult:
    """Offsets of the cached keys/values of ``ids`` that lower the LM's NLL of ``ids``; weights frozen."""
    n = len(ids)
    deltas = [(torch.zeros(n, dk, requires_grad=True), torch.zeros(n, dv, requires_grad=True))
              for dk, dv in lm.kv_shapes()]
    params = [t for pair in deltas for t in pair]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        with lm.kv_offsets(deltas):
            loss = lm.sequence_nll(ids)
        losses.append(float(loss))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad(), lm.kv_offsets(deltas):
        losses.append(float(lm.sequence_nll(ids)))
    return HSOResult([(dk.detach(), dv.detach()) for dk, dv in deltas], losses)


def segment_nll(lm, segments: list[str], *, steps: int = 3, lr: float = 1e-2) -> dict[str, float]:
    """Mean NLL per token of segment i + 1 read after segment i, with the cache of segment i as is
    and after HSO on segment i (the next segment is never seen by the update)."""
    plain = tuned = 0.0
    tokens = 0
    for before, after in zip(segments[:-1], segments[1:]):
        result = optimise_cache(lm, lm.encode(before, start=True), steps=steps, lr=lr)
        base, _ = lm.score_choices(before, [""], [after])
        opt, _ = lm.score_choices(before, [""], [after], kv_deltas=result.deltas)
        plain, tuned = plain - float(base[0, 0]), tuned - float(opt[0, 0])
        tokens += len(lm.encode(after))
    return {"nll": plain / max(tokens, 1), "nll_hso": tuned / max(tokens, 1), "tokens": tokens}
