"""Circuit component reuse: which attention heads two tasks share, and what steering them does.

Merullo, Eickhoff & Pavlick 2023, "Circuit Component Reuse Across Tasks in Transformer Language
Models", https://arxiv.org/abs/2310.08744 (card 29). The paper finds the IOI circuit of GPT-2 medium
largely reused by Colored Objects (~78 % of in-circuit heads) and repairs Colored Objects with a
4-head intervention (49.6 % → 93.7 %). Here, on a causal-LM backbone (SmolLM2-135M):

* ``head_effects``: activation patching per head — each head's output at the final token is taken from
  the corrupted run into the clean run, one head at a time; the effect is the fraction of the clean →
  corrupted logit-difference gap that the head alone moves (1: the head carries it all). The paper uses
  path patching stage by stage; this is its first stage (head → logits, through everything downstream).
* ``path_effects``: the second stage — for chosen receiver heads, how much each earlier (sender) head moves
  the logit difference *through the receivers' queries only*: the sender is patched from the corrupted run
  while every head between it and the receivers is frozen at its clean output, the receivers' queries are
  read from that run and written into a clean run (everything else clean); the effect is the share of the
  gap it moves. Sender → receiver-query paths at the final token are the paths of the paper's IOI analysis
  (S-inhibition heads → name movers' queries). ``into="keys_values"`` measures the other half: the sender is
  corrupted at the earlier positions only (every head between frozen clean at every position), and each
  receiver's own final-token output — its clean query reading the changed keys and values — is patched in
  (induction and duplicate-token heads → S-inhibition heads' keys and values, in the paper's terms).
* ``circuit``: the top fraction of heads by effect; ``overlap`` = |A ∩ B| / |B| (the paper's measure)
  and Jaccard, at several thresholds (a threshold is a choice: the card's pitfall).
* ``steer``: an intervention on a set of heads (their final-token outputs scaled by ``alpha``), with
  ``alpha`` chosen on one half of the prompts and accuracy measured on the other; the paper instead
  rewrites four inhibition heads' attention patterns, which needs head roles this analysis does not
  assign — said in the results.
"""

from __future__ import annotations

import numpy as np
import torch

from anytask.backbones.patching import Batch, HeadHooks
from anytask.core.errors import AnytaskError
from anytask.methods.mechanisms.base import ANALYSES, PromptSet


def answer_tokens(hooks: HeadHooks, prompts: PromptSet) -> tuple[PromptSet, torch.Tensor, int]:
    """The prompts whose answer and alternative are each one token, their ids ``(n, 2)``, and how many were
    skipped (a multi-token answer would be scored by its first token: never)."""
    keep, ids = [], []
    for i, (a, b) in enumerate(zip(prompts.answer, prompts.alternative)):
        ta, tb = hooks.lm.encode(a), hooks.lm.encode(b)
        if len(ta) == 1 and len(tb) == 1 and ta != tb:
            keep.append(i)
            ids.append([ta[0], tb[0]])
    if not keep:
        raise AnytaskError(f"{prompts.task}: no prompt has single-token answers for this tokenizer "
                           f"(e.g. {prompts.answer[0]!r} is {len(hooks.lm.encode(prompts.answer[0]))} tokens)")
    return prompts.subset(keep), torch.tensor(ids), len(prompts) - len(keep)


def _by_length(hooks: HeadHooks, prompts: PromptSet, size: int) -> tuple[PromptSet, list[slice], list[int]]:
    """The prompts reordered so that each slice of at most ``size`` holds clean prompts of one token length, the
    slices, and the order (indices into the given prompts)."""
    lengths = [len(hooks.lm.encode(t, start=True)) for t in prompts.clean]
    order, slices = [], []
    for length in sorted(set(lengths)):
        group = [i for i, n in enumerate(lengths) if n == length]
        for s in range(0, len(group), size):
            slices.append(slice(len(order), len(order) + len(group[s:s + size])))
            order.extend(group[s:s + size])
    return prompts.subset(order), slices, order


def logit_difference(hooks: HeadHooks, batches: list[Batch], tokens: torch.Tensor, **edits) -> np.ndarray:
    """answer - alternative logit per prompt, with optional ``patch`` / ``scale`` edits (per batch lists)."""
    out, start = [], 0
    for b, batch in enumerate(batches):
        t = tokens[start:start + len(batch)]
        kw = {k: v[b] for k, v in edits.items() if v is not None}
        z = hooks.logits(batch, t, **kw)
        out.append((z[:, 0] - z[:, 1]).numpy())
        start += len(batch)
    return np.concatenate(out)


def head_effects(hooks: HeadHooks, prompts: PromptSet, *, batch_size: int = 32, progress: bool = False) -> dict:
    """Per-head activation patching (corrupted → clean at the final token): ``effects`` ``(L, H)``, each the mean
    over prompts of (LD_patched - LD_clean) / (LD_corrupt - LD_clean), with the clean and corrupted logit
    differences and the skipped count."""
    from tqdm.auto import tqdm

    prompts, tokens, skipped = answer_tokens(hooks, prompts)
    prompts, slices, order = _by_length(hooks, prompts, batch_size)  # equal lengths: a cached prefix per batch
    tokens = tokens[order]
    clean_b = [hooks.cache_prefix(hooks.batch(list(prompts.clean[s]))) for s in slices]
    corrupt_b = [hooks.batch(list(prompts.corrupt[s])) for s in slices]
    ld_clean = logit_difference(hooks, clean_b, tokens)
    ld_corrupt = logit_difference(hooks, corrupt_b, tokens)
    z_corrupt = [hooks.outputs(b) for b in corrupt_b]  # per batch (L, B, H, d)
    gap = float(np.mean(ld_corrupt) - np.mean(ld_clean))
    if abs(gap) < 1e-6:
        raise AnytaskError(f"{prompts.task}: the corruption does not move the logit difference; nothing to patch")
    effects = np.zeros((hooks.n_layers, hooks.n_heads))
    bar = tqdm(total=hooks.n_layers * hooks.n_heads, desc=f"patching {prompts.task}", disable=not progress)
    for layer in range(hooks.n_layers):
        for head in range(hooks.n_heads):
            patches = [{(layer, head): z[layer, :, head]} for z in z_corrupt]
            moved = logit_difference(hooks, clean_b, tokens, patch=patches)
            effects[layer, head] = (np.mean(moved) - np.mean(ld_clean)) / gap
            bar.update()
    bar.close()
    return {"task": prompts.task, "effects": effects, "ld_clean": float(np.mean(ld_clean)),
            "ld_corrupt": float(np.mean(ld_corrupt)), "n": len(prompts), "skipped": skipped}


def path_effects(hooks: HeadHooks, prompts: PromptSet, receivers, *, into: str = "queries", batch_size: int = 32,
                 progress: bool = False) -> dict:
    """Path patching's second stage into ``receivers`` (``[(layer, head)]``): ``effects`` ``(L, H)`` for every sender
    in a layer below the lowest receiver (NaN elsewhere), each the mean over prompts of
    (LD_path - LD_clean) / (LD_corrupt - LD_clean).

    ``into="queries"``: the sender is corrupted at the final token, every head between it and the receivers is
    frozen at its clean output, and the receivers' final-token queries from that run replace theirs in a clean run.
    ``into="keys_values"``: the sender is corrupted at every *earlier* position (clean at the final one), every head
    between it and the receivers is frozen at its clean output at every position, and each receiver's own final-
    token output in that run — its clean query attending over keys and values the sender changed — replaces its
    output in a clean run. Prompts whose corrupted version has another token count are skipped (``unaligned``)."""
    from tqdm.auto import tqdm

    if into not in ("queries", "keys_values"):
        raise AnytaskError(f"into={into!r}: choose 'queries' or 'keys_values'")
    receivers = sorted({(int(a), int(b)) for a, b in receivers})
    if not receivers:
        raise AnytaskError("give at least one receiver head (layer, head)")
    for layer, head in receivers:
        hooks.check_head(layer, head)
    lowest, highest = receivers[0][0], max(r[0] for r in receivers)
    if lowest == 0:
        raise AnytaskError("a receiver in layer 0 has no earlier head to send to it; choose receivers in layer >= 1")
    prompts, tokens, skipped = answer_tokens(hooks, prompts)
    unaligned = 0
    if into == "keys_values":
        keep = np.flatnonzero([len(hooks.lm.encode(c, start=True)) == len(hooks.lm.encode(k, start=True))
                               for c, k in zip(prompts.clean, prompts.corrupt)])
        if not len(keep):
            raise AnytaskError(f"{prompts.task}: no corrupted prompt has as many tokens as its clean one; patching "
                               "into keys and values pairs positions, so the two must align")
        unaligned = len(prompts) - len(keep)
        prompts, tokens = prompts.subset(keep.tolist()), tokens[keep]
    prompts, slices, order = _by_length(hooks, prompts, batch_size)
    tokens = tokens[order]
    clean_b = [hooks.cache_prefix(hooks.batch(list(prompts.clean[s]))) for s in slices]
    corrupt_b = [hooks.batch(list(prompts.corrupt[s])) for s in slices]
    ld_clean = logit_difference(hooks, clean_b, tokens)
    ld_corrupt = logit_difference(hooks, corrupt_b, tokens)
    gap = float(np.mean(ld_corrupt) - np.mean(ld_clean))
    if abs(gap) < 1e-6:
        raise AnytaskError(f"{prompts.task}: the corruption does not move the logit difference; nothing to patch")
    every = into == "keys_values"
    z_clean = [hooks.outputs(b, every_position=every) for b in clean_b]  # (L, B, [T,] H, d)
    z_corrupt = [hooks.outputs(b, every_position=every) for b in corrupt_b]
    effects = np.full((hooks.n_layers, hooks.n_heads), np.nan)
    bar = tqdm(total=lowest * hooks.n_heads, desc=f"path patching {prompts.task} ({into})", disable=not progress)
    for layer in range(lowest):
        for head in range(hooks.n_heads):
            edits = []
            for b, batch in enumerate(clean_b):
                # heads between sender and receivers keep their clean outputs: only direct paths carry the change
                edit = {(lyr, h): z_clean[b][lyr, :, ..., h, :] for lyr in range(layer + 1, highest)
                        for h in range(hooks.n_heads)}
                if every:
                    sender = z_corrupt[b][layer, :, :, head].clone()
                    sender[:, -1] = z_clean[b][layer, :, -1, head]  # the final token stays clean: earlier ones only
                    edit[(layer, head)] = sender
                    z = hooks.outputs(batch, patch=edit, unedited=True)
                    edits.append({r: z[r[0], :, r[1]] for r in receivers})
                else:
                    edit[(layer, head)] = z_corrupt[b][layer, :, head]
                    q = hooks.queries(batch, patch=edit)
                    edits.append({r: q[r[0], :, r[1]] for r in receivers})
            moved = logit_difference(hooks, clean_b, tokens, **{"patch" if every else "q_patch": edits})
            effects[layer, head] = (np.mean(moved) - np.mean(ld_clean)) / gap
            bar.update()
    bar.close()
    return {"task": prompts.task, "receivers": receivers, "into": into, "effects": effects,
            "ld_clean": float(np.mean(ld_clean)), "ld_corrupt": float(np.mean(ld_corrupt)), "n": len(prompts),
            "skipped": skipped, "unaligned": unaligned}


def circuit(effects: np.ndarray, fraction: float) -> set[tuple[int, int]]:
    """The top ``fraction`` of heads by patching effect (at least one); NaN cells (heads not measured, e.g. not
    senders in path patching) are never chosen and not counted."""
    if not 0 < fraction <= 1:
        raise AnytaskError(f"fraction={fraction!r}: pass a number in (0, 1]")
    measured = np.isfinite(effects)
    k = max(1, int(round(fraction * measured.sum())))
    flat = np.argsort(-np.where(measured, effects, -np.inf), axis=None)[:k]
    return {tuple(int(v) for v in np.unravel_index(i, effects.shape)) for i in flat}


def overlap(a: set, b: set) -> dict:
    """|A ∩ B| / |B| (the paper's share of B's heads found in A) and the Jaccard index."""
    if not a or not b:
        raise AnytaskError("overlap of an empty circuit")
    both = len(a & b)
    return {"overlap": both / len(b), "jaccard": both / len(a | b), "shared": sorted(a & b)}


def accuracy(hooks: HeadHooks, prompts: PromptSet, *, scale: dict | None = None, batch_size: int = 32) -> float:
    """Share of clean prompts whose answer has the highest logit among ``prompts.candidates`` (or among the
    answer and the alternative when there are no candidates)."""
    candidates = prompts.candidates or None
    prompts, slices, _ = _by_length(hooks, prompts, batch_size)
    correct, start = 0, 0
    for s in slices:
        batch = hooks.cache_prefix(hooks.batch(list(prompts.clean[s])))
        n = len(batch)
        answers = prompts.answer[start:start + n]
        if candidates is None:
            options = [[a, b] for a, b in zip(answers, prompts.alternative[start:start + n])]
        else:
            options = [list(candidates)] * n
        ids = torch.tensor([[hooks.lm.encode(o)[0] for o in opts] for opts in options])
        z = hooks.logits(batch, ids, scale=scale)
        correct += sum(opts[int(i)] == a for opts, i, a in zip(options, z.argmax(1), answers))
        start += n
    return correct / len(prompts)


def steer(hooks: HeadHooks, prompts: PromptSet, heads, *, alphas=(0.0, 0.5, 1.5, 2.0, 3.0), seed: int = 0,
          batch_size: int = 32) -> dict:
    """Scale ``heads``' final-token outputs by the ``alpha`` that maximises accuracy on a random half of the
    prompts; report accuracy on the other half before and after (1.0 is in the grid: no change is allowed)."""
    heads = [tuple(h) for h in heads]
    for layer, head in heads:
        hooks.check_head(layer, head)
    prompts, _, skipped = answer_tokens(hooks, prompts)
    order = np.random.default_rng(seed).permutation(len(prompts))
    fit, held = prompts.subset(order[: len(order) // 2]), prompts.subset(order[len(order) // 2:])
    grid = sorted({1.0, *map(float, alphas)})
    fit_acc = {a: accuracy(hooks, fit, scale={h: a for h in heads}, batch_size=batch_size) for a in grid}
    best = max(grid, key=lambda a: (fit_acc[a], -abs(a - 1.0)))
    return {"heads": [list(h) for h in heads], "alpha": best, "fit_accuracy": fit_acc,
            "before": accuracy(hooks, held, batch_size=batch_size),
            "after": accuracy(hooks, held, scale={h: best for h in heads}, batch_size=batch_size),
            "n_held": len(held), "skipped": skipped}


@ANALYSES.register("circuit_reuse", reference="Merullo et al. 2023, https://arxiv.org/abs/2310.08744",
                   summary="per-head activation patching on two prompt tasks; circuits' overlap; steering the "
                           "shared heads", input="texts", output="values", needs_backbone=True)
def circuit_reuse(lm, first: PromptSet, second: PromptSet, *, fractions=(0.02, 0.05, 0.1), seed: int = 0,
                  batch_size: int = 32, progress: bool = False) -> dict:
    """Patch every head on both tasks, compare their circuits at each ``fraction``, and steer ``second`` with
    the heads the two share at the largest fraction (against as many random heads, the control)."""
    hooks = HeadHooks(lm)
    a = head_effects(hooks, first, batch_size=batch_size, progress=progress)
    b = head_effects(hooks, second, batch_size=batch_size, progress=progress)
    overlaps = {}
    for f in fractions:
        ca, cb = circuit(a["effects"], f), circuit(b["effects"], f)
        overlaps[str(f)] = {**overlap(ca, cb), "size": len(cb), "chance": len(ca) / a["effects"].size}
    shared = overlaps[str(max(fractions))]["shared"] or sorted(circuit(b["effects"], max(fractions)))[:1]
    rng = np.random.default_rng(seed)
    every = [(i, j) for i in range(hooks.n_layers) for j in range(hooks.n_heads)]
    random_heads = [every[i] for i in rng.choice(len(every), size=len(shared), replace=False)]
    return {"first": a, "second": b, "overlaps": overlaps,
            "steer_shared": steer(hooks, second, shared, seed=seed, batch_size=batch_size),
            "steer_random": steer(hooks, second, random_heads, seed=seed, batch_size=batch_size)}
