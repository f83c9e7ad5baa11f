"""``uwe``: a bi-encoder ranker tuned with a many-to-many InfoNCE, scored by soft late interaction.

De Lange, Decorte & Van Hautte 2025, Unified Work Embeddings: Contrastive Learning of a Bidirectional
Multi-task Ranker, https://arxiv.org/abs/2511.07969. The paper's training code is not public; this
follows its description (card 22):

* **loss** — for linked (query, target) pairs from a graph, every in-batch target linked to a query is a
  positive (positives found by graph identity, so an alias of another sampled target is not a false
  negative); SupCon's "L_out": the mean over a query's positives of ``-log softmax(s/τ)``, averaged over
  queries, in both directions (targets→queries too). ``sets`` add a one-sided graph (texts that are
  relevant to each other, such as occupations of one ISCO group) with weight ``alpha_sets``. With one
  positive per query it is the ordinary InfoNCE (a test checks);
* **scorers** — ``mean`` (cosine of mean-pooled embeddings), ``maxsim`` (ColBERT: each query token's
  best target-token cosine, averaged over query tokens), ``sli`` (soft late interaction: each query token
  takes a softmax(cos/τ_a)-weighted mean of its cosines to the target tokens; τ_a → 0 is MaxSim, a test
  checks) and ``sli_both`` (the mean of SLI in both directions). Token states are unit length, so the
  attention logits and the cosines are the same numbers;
* **cost** — only the top ``n_top`` layers of a copy of the backbone are tuned
  (:class:`anytask.backbones.split.SplitEncoder`); the frozen lower states are computed once per text, and
  the target space is encoded once (``set_targets``), so a query costs one encoder pass and the scoring.
  ``steps=0`` is the frozen backbone under the same scorer (the generalist baseline).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.methods.retrieval.base import RANKERS, BaseRanker, check_pairs

SCORERS = ("mean", "maxsim", "sli", "sli_both")
MAX_BLOCK = 1 << 24  # score-tensor elements per chunk of queries (64 MB of floats)


def _masked_mean(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def late_interaction(Q: Tensor, q_mask: Tensor, Y: Tensor, y_mask: Tensor, *, scorer: str,
                     tau_a: float = 0.1) -> Tensor:
    """Scores ``(n_q, n_y)`` between token sets: ``Q`` ``(n_q, T_q, D)``, ``Y`` ``(n_y, T_y, D)`` unit token
    states, masks 1 on real tokens. ``scorer``: ``maxsim``, ``sli`` or ``sli_both``."""
    S = torch.einsum("qid,yjd->qyij", Q, Y)  # (n_q, n_y, T_q, T_y) cosines
    qm = q_mask.bool()[:, None, :, None]
    ym = y_mask.bool()[None, :, None, :]
    neg = torch.finfo(S.dtype).min
    query_tokens = q_mask.bool()[:, None, :].expand(-1, Y.shape[0], -1)  # (n_q, n_y, T_q)
    if scorer == "maxsim":
        return _masked_mean(S.masked_fill(~ym, neg).amax(-1), query_tokens, -1)
    if scorer not in ("sli", "sli_both"):
        raise AnytaskError(f"scorer={scorer!r}: late interaction is one of maxsim, sli, sli_both")
    attend = torch.softmax(S.masked_fill(~ym, neg) / tau_a, dim=-1)  # each query token over the target's tokens
    forward = _masked_mean((attend * S).sum(-1), query_tokens, -1)
    if scorer == "sli":
        return forward
    back = torch.softmax(S.masked_fill(~qm, neg) / tau_a, dim=-2)  # each target token over the query's tokens
    target_tokens = y_mask.bool()[None, :, :].expand(Q.shape[0], -1, -1)  # (n_q, n_y, T_y)
    return (forward + _masked_mean((back * S).sum(-2), target_tokens, -1)) / 2


def many_to_many_infonce(S: Tensor, positives: Tensor, tau: "float | Tensor") -> Tensor:
    """Mean over rows with a positive of the mean ``-log softmax(S/τ)`` over that row's positives (SupCon's
    L_out); entries of ``S`` at ``-inf`` (a text against itself) are out of every denominator."""
    logp = torch.log_softmax(S / tau, dim=1).masked_fill(~positives, 0.0)
    has = positives.any(1)
    if not has.any():  # nothing to pull together: a zero that still belongs to the graph
        return S.masked_fill(~torch.isfinite(S), 0.0).sum() * 0.0
    return (-logp.sum(1)[has] / positives.sum(1)[has]).mean()


@RANKERS.register("uwe", reference="De Lange et al. 2025, UWE, https://arxiv.org/abs/2511.07969",
                  summary="many-to-many InfoNCE on a tuned copy of the top layers; mean-pool, MaxSim or soft late "
                          "interaction scoring against a cached target space",
                  input="texts", output="scores", needs_backbone=True, saveable=True)
class UWERanker(BaseRanker):
    def __init__(self, *, backbone: str = "minilm", scorer: str = "sli_both", tau: float = 0.05, tau_a: float = 0.1,
                 alpha_sets: float = 0.5, n_top: int = 2, steps: int = 300, batch_targets: int = 64,
                 per_target: int = 2, lr: float = 1e-4, warmup: float = 0.1, max_length: int = 64, seed: int = 0,
                 progress: bool = False) -> None:
        self.backbone = backbone
        self.scorer = scorer
        self.tau = tau
        self.tau_a = tau_a
        self.alpha_sets = alpha_sets
        self.n_top = n_top
        self.steps = steps
        self.batch_targets = batch_targets
        self.per_target = per_target
        self.lr = lr
        self.warmup = warmup
        self.max_length = max_length
        self.seed = seed
        self.progress = progress

    def _check_params(self) -> None:
        if self.scorer not in SCORERS:
            raise AnytaskError(f"scorer={self.scorer!r}: use one of {', '.join(SCORERS)}")
        for name, lo in (("steps", 0), ("batch_targets", 2), ("per_target", 1), ("n_top", 1), ("max_length", 4)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise AnytaskError(f"{name}={v!r}: pass an integer >= {lo}")
        for name in ("tau", "tau_a", "lr"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise AnytaskError(f"{name}={v!r}: pass a finite number > 0")
        if not (isinstance(self.alpha_sets, (int, float)) and self.alpha_sets >= 0):
            raise AnytaskError(f"alpha_sets={self.alpha_sets!r}: pass a weight >= 0")
        if not (isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1):
            raise AnytaskError(f"warmup={self.warmup!r}: pass the warm-up fraction of the steps, in [0, 1)")

    def _split(self):
        from anytask.backbones import get_backbone
        from anytask.backbones.split import SplitEncoder

        return SplitEncoder(get_backbone(self.backbone), int(self.n_top), int(self.max_length))

    # -- fit ---------------------------------------------------------------------------------------------
    def fit(self, queries, targets, sets=None) -> "UWERanker":
        """Tune on linked pairs: ``queries[i]`` is relevant to ``targets[i]`` (repeat a text to give it several
        links); ``sets``: optional groups of texts relevant to each other."""
        self._check_params()
        queries, targets = check_pairs(queries, targets)
        groups = [list(dict.fromkeys(g)) for g in (sets or [])]
        groups = [g for g in groups if len(g) >= 2]
        self.encoder_ = self._split()
        self.loss_curve_, start = [], time.perf_counter()
        if self.steps:
            self._tune(queries, targets, groups)
        self.encoder_.top.eval()
        self.fit_seconds_ = round(time.perf_counter() - start, 2)
        return self

    def _tune(self, queries: list[str], targets: list[str], groups: list[list[str]]) -> None:
        from tqdm.auto import tqdm

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        texts = list(dict.fromkeys(queries + targets + [t for g in groups for t in g]))
        lower = dict(zip(texts, self.encoder_.lower(texts)))
        links: dict[str, set] = {}
        for q, t in zip(queries, targets):
            links.setdefault(t, set()).add(q)
        by_target = {t: sorted(qs) for t, qs in links.items()}
        target_list = sorted(by_target)
        top, total = self.encoder_.top, int(self.steps)
        opt = torch.optim.AdamW([p for p in top.parameters() if p.requires_grad], lr=float(self.lr), weight_decay=0.01)
        warm = max(1, int(self.warmup * total))
        bar = tqdm(total=total, desc="uwe", disable=not self.progress)
        for step in range(total):
            top.train()
            for g in opt.param_groups:  # linear warm-up, then linear decay to 0
                g["lr"] = float(self.lr) * min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))
            pick = rng.choice(len(target_list), size=min(int(self.batch_targets), len(target_list)), replace=False)
            batch_t = [target_list[i] for i in pick]
            batch_q = list(dict.fromkeys(q for t in batch_t for q in _draw(by_target[t], int(self.per_target), rng)))
            P = torch.tensor([[q in links[t] for t in batch_t] for q in batch_q])  # by graph identity
            S = self._train_scores([lower[q] for q in batch_q], [lower[t] for t in batch_t])
            loss = many_to_many_infonce(S, P, self.tau) + many_to_many_infonce(S.T, P.T, self.tau)
            if groups and self.alpha_sets:
                n_groups = max(2, int(self.batch_targets) // int(self.per_target))
                chosen = rng.choice(len(groups), size=min(n_groups, len(groups)), replace=False)
                members = [(m, gi) for gi in chosen for m in _draw(groups[gi], int(self.per_target), rng)]
                members = list({m: gi for m, gi in members}.items())
                gid = torch.tensor([gi for _, gi in members])
                S2 = self._train_scores([lower[m] for m, _ in members], [lower[m] for m, _ in members])
                eye = torch.eye(len(members), dtype=torch.bool)
                P2 = (gid[:, None] == gid[None, :]) & ~eye
                loss = loss + float(self.alpha_sets) * many_to_many_infonce(S2.masked_fill(eye, float("-inf")), P2,
                                                                            self.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.loss_curve_.append(round(loss.item(), 5))
            bar.update(1)
            if self.progress and (step + 1) % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(self.loss_curve_[-50:]):.3f}")
        bar.close()

    def _train_scores(self, q_states: list[Tensor], y_states: list[Tensor]) -> Tensor:
        Q, qm, qp = self._encode_states(q_states)
        Y, ym, yp = self._encode_states(y_states)
        return qp @ yp.T if self.scorer == "mean" else late_interaction(Q, qm, Y, ym, scorer=self.scorer,
                                                                        tau_a=float(self.tau_a))

    def _encode_states(self, states: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Unit token states, their mask and the backbone's pooled (unit) embeddings of a batch."""
        tokens, mask = self.encoder_.token_states(states)
        return F.normalize(tokens, dim=-1), mask, F.normalize(self.encoder_.backbone.pool(tokens, mask), dim=-1)

    # -- encode and score ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 128) -> tuple[Tensor, Tensor, Tensor]:
        """``(tokens (N, T, D), mask (N, T), pooled (N, D))`` of texts through the (tuned) encoder."""
        check_is_fitted(self, "encoder_")
        self.encoder_.max_length = int(self.max_length)  # set_params(max_length=...) applies to later encodes
        self.encoder_.top.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        parts, pooled = [None] * len(texts), torch.empty(len(texts), self.encoder_.backbone.config.dim)
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            tokens, mask, p = self._encode_states(self.encoder_.lower([texts[i] for i in idx], batch_size))
            pooled[idx] = p
            for row, i in enumerate(idx):
                parts[i] = tokens[row, :int(mask[row].sum())]
        T = max(len(p) for p in parts)
        padded = torch.zeros(len(texts), T, pooled.shape[1])
        mask = torch.zeros(len(texts), T, dtype=torch.long)
        for i, p in enumerate(parts):
            padded[i, :len(p)], mask[i, :len(p)] = p, 1
        return padded, mask, pooled

    def _cache_targets(self, texts: list[str]) -> None:
        self.target_cache_ = self.encode(texts)

    @torch.no_grad()
    def _score(self, queries: list[str]) -> np.ndarray:
        Q, qm, qp = self.encode(queries)
        Y, ym, yp = self.target_cache_
        if self.scorer == "mean":
            return (qp @ yp.T).numpy()
        chunk = max(1, MAX_BLOCK // max(1, Y.shape[0] * Y.shape[1] * Q.shape[1]))
        return torch.cat([late_interaction(Q[i:i + chunk], qm[i:i + chunk], Y, ym, scorer=self.scorer,
                                           tau_a=float(self.tau_a)) for i in range(0, len(Q), chunk)]).numpy()

    # -- persistence (anytask.core.io) -----------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "encoder_")
        extra = {"loss_curve": self.loss_curve_, "fit_seconds": self.fit_seconds_,
                 "targets": getattr(self, "targets_", None)}
        return extra, {f"top.{k}": v for k, v in self.encoder_.top_state().items()}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict) -> "UWERanker":
        obj = cls(**params)
        obj.encoder_ = obj._split()
        obj.encoder_.load_top_state({k[4:]: v for k, v in tensors.items() if k.startswith("top.")})
        obj.encoder_.top.eval()
        obj.loss_curve_, obj.fit_seconds_ = list(extra["loss_curve"]), extra["fit_seconds"]
        if extra.get("targets"):
            obj.set_targets(extra["targets"])
        return obj


def _draw(items: list[str], n: int, rng) -> list[str]:
    return list(items) if len(items) <= n else [items[i] for i in rng.choice(len(items), size=n, replace=False)]
