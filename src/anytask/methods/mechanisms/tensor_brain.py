"""The Tensor Brain's bilayer: semantic decoding of triples between an index layer and a representation layer.

Tresp et al. 2020, "The Tensor Brain: Semantic Decoding for Perception and Memory",
https://arxiv.org/abs/2001.11027 (card 37) — a theory paper; every choice below is ours and stated. A perceived
scene becomes a representation-layer state ``q = g(W x)`` (``x``: frozen text features of the scene). Concepts
(entities, classes, attribute values) are rows ``a_i`` of ``A`` — an index's embedding is its connection to the
representation layer — and predicates rows of ``P``. One triple is decoded bottom-up / top-down in turn:

    s ~ softmax(A q);  q <- g(q + alpha a_s);  p ~ softmax(P q);  q <- g(q + alpha p_p);  o ~ softmax(A q)

``g`` renormalises (layer norm without parameters), which bounds the drift of repeated write-backs (the card's
pitfall). Training maximises the likelihood of a scene's triples under this decoding. ``decode`` enumerates every
branch whose three step probabilities all clear ``threshold`` (chosen at fit on a held-out fifth of the training
scenes, by micro-F1, then the model is refitted on all of them). ``alpha=0`` removes the write-back: subject,
predicate and object are then read independently from the same state, so which object belongs to which subject
is lost — the ablation that shows what the bilayer's top-down step is for.

Memory modes: ``memorise(X)`` stores one *time index* per episode whose embedding is the state perceived then;
``recall(cues)`` activates the time index that best matches a cue's state and decodes from its embedding (an
episode recalled from a fragment). Concept learning: ``novelty(X)`` is 1 - the largest subject probability;
``allocate(X, threshold)`` adds an index ``a_new ∝ q`` for every state no index explains.

``FlatTriples`` is the strong simple baseline: one logistic output per triple seen in training, on the same
features, with its threshold chosen the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

TRIPLE_DECODERS: Registry = Registry("triple decoder", family="mechanisms")
THRESHOLDS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def _check(X, y=None):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or not len(X):
        raise AnytaskError("X must be a non-empty 2-D array of features, one row per scene")
    if y is not None:
        if len(y) != len(X):
            raise AnytaskError(f"{len(X)} scenes but {len(y)} triple lists; give one list of (s, p, o) per scene")
        for i, ts in enumerate(y):
            if not len(ts) or any(len(t) != 3 or min(t) < 0 for t in ts):
                raise AnytaskError(f"scene {i}: give a non-empty list of (subject, predicate, object) index triples")
    return X


def micro_f1(pred: list[set], true: list) -> dict[str, float]:
    tp = sum(len(p & set(map(tuple, t))) for p, t in zip(pred, true))
    n_pred, n_true = sum(len(p) for p in pred), sum(len(t) for t in true)
    prec, rec = tp / max(n_pred, 1), tp / max(n_true, 1)
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / max(prec + rec, 1e-12)}


class _Bilayer(nn.Module):
    def __init__(self, in_dim: int, dim: int, n_concepts: int, n_predicates: int, alpha: float) -> None:
        super().__init__()
        self.W = nn.Linear(in_dim, dim)
        self.A = nn.Parameter(torch.randn(n_concepts, dim) * 0.1)
        self.P = nn.Parameter(torch.randn(n_predicates, dim) * 0.1)
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.alpha = alpha

    def g(self, v: torch.Tensor) -> torch.Tensor:
        return nn.functional.layer_norm(v, v.shape[-1:])

    def state(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.W(x))

    def logp(self, q: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(q @ M.T * self.log_scale.exp() / M.shape[1] ** 0.5, -1)

    def write(self, q: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.g(q + self.alpha * a)

    def triple_logp(self, q: torch.Tensor, s: torch.Tensor, p: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        ls = self.logp(q, self.A).gather(1, s[:, None])[:, 0]
        q = self.write(q, self.A[s])
        lp = self.logp(q, self.P).gather(1, p[:, None])[:, 0]
        q = self.write(q, self.P[p])
        return ls + lp + self.logp(q, self.A).gather(1, o[:, None])[:, 0]


class _Fitted(BaseEstimator):
    def fit(self, X, y) -> "_Fitted":
        X = _check(X, y)
        rng = np.random.default_rng(self.seed)
        if self.threshold is None:  # choose it on a held-out fifth of the training scenes, then refit on all
            order = rng.permutation(len(X))
            cut = max(1, len(X) // 5)
            held, kept = order[:cut], order[cut:]
            self._train(X[kept], [y[i] for i in kept], X, y)
            truth = [y[i] for i in held]
            f1 = {t: micro_f1(self.decode(X[held], threshold=t), truth)["f1"] for t in THRESHOLDS}
            self.threshold_ = max(f1, key=f1.get)
            self.threshold_f1_ = f1
        else:
            self.threshold_ = float(self.threshold)
        self._train(X, y, X, y)
        return self

    def score(self, X, y) -> float:
        return micro_f1(self.decode(X), y)["f1"]


@TRIPLE_DECODERS.register("tensor_brain", reference="Tresp et al. 2020, https://arxiv.org/abs/2001.11027",
                   summary="bilayer semantic decoding: index layer A/P, representation q, sequential s-p-o with "
                           "top-down write-back; episodic recall by time indices; new indices for novel states",
                   input="features", output="triples")
class TensorBrain(_Fitted):
    def __init__(self, *, dim: int = 128, alpha: float = 1.0, n_concepts: int | None = None,
                 n_predicates: int | None = None, epochs: int = 150, batch_size: int = 256, lr: float = 3e-3,
                 threshold: float | None = None, seed: int = 0) -> None:
        self.dim, self.alpha, self.n_concepts, self.n_predicates = dim, alpha, n_concepts, n_predicates
        self.epochs, self.batch_size, self.lr, self.threshold, self.seed = epochs, batch_size, lr, threshold, seed

    def _train(self, X, y, X_all, y_all) -> None:
        flat = np.array([(i, *t) for i, ts in enumerate(y) for t in ts], dtype=np.int64)
        n_c = self.n_concepts or int(max(max(t[0], t[2]) for ts in y_all for t in ts)) + 1
        n_p = self.n_predicates or int(max(t[1] for ts in y_all for t in ts)) + 1
        if flat[:, [1, 3]].max() >= n_c or flat[:, 2].max() >= n_p:
            raise AnytaskError(f"a triple names an index beyond n_concepts={n_c} / n_predicates={n_p}")
        torch.manual_seed(self.seed)
        self.model_ = _Bilayer(X.shape[1], self.dim, n_c, n_p, self.alpha)
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        Xt, ft = torch.as_tensor(X), torch.as_tensor(flat)
        gen = torch.Generator().manual_seed(self.seed)
        steps = self.epochs * max(1, len(flat) // self.batch_size)
        self.history_ = []
        for step in range(steps):
            b = ft[torch.randint(len(ft), (min(self.batch_size, len(ft)),), generator=gen)]
            loss = -self.model_.triple_logp(self.model_.state(Xt[b[:, 0]]), b[:, 1], b[:, 2], b[:, 3]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == steps - 1:
                self.history_.append(float(loss.detach()))
        self.model_.eval()
        self.n_base_concepts_ = n_c
        self.time_ = torch.zeros(0, self.dim)

    @torch.no_grad()
    def _decode_state(self, q: torch.Tensor, t: float) -> set[tuple[int, int, int]]:
        m, out = self.model_, set()
        ps = m.logp(q, m.A).exp()
        for s in torch.nonzero(ps >= t).flatten().tolist():
            q1 = m.write(q, m.A[s])
            pp = m.logp(q1, m.P).exp()
            for p in torch.nonzero(pp >= t).flatten().tolist():
                po = m.logp(m.write(q1, m.P[p]), m.A).exp()
                out |= {(s, p, o) for o in torch.nonzero(po >= t).flatten().tolist()}
        return out

    @torch.no_grad()
    def states(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X = _check(X)
        if X.shape[1] != self.model_.W.in_features:
            raise AnytaskError(f"X has {X.shape[1]} features; this model was fitted on {self.model_.W.in_features}")
        return self.model_.state(torch.as_tensor(X))

    def decode(self, X, threshold: float | None = None) -> list[set[tuple[int, int, int]]]:
        """The triples of each scene: every s -> p -> o branch whose step probabilities all clear the threshold."""
        t = self.threshold_ if threshold is None else threshold
        return [self._decode_state(q, t) for q in self.states(X)]

    @torch.no_grad()
    def triple_probability(self, X, triples) -> np.ndarray:
        """p(s, p, o | q) under sequential decoding, ``(n_scenes, n_triples)``."""
        q = self.states(X)
        tr = torch.as_tensor(np.asarray(triples, dtype=np.int64))
        rows = [self.model_.triple_logp(qi.expand(len(tr), -1), tr[:, 0], tr[:, 1], tr[:, 2]).exp() for qi in q]
        return torch.stack(rows).numpy()

    # -- episodic memory ------------------------------------------------------------------------------------------
    def memorise(self, X) -> np.ndarray:
        """Store one time index per row (its embedding: the state perceived); returns their ids."""
        q = self.states(X)
        start = len(self.time_)
        self.time_ = torch.cat([self.time_, q])
        return np.arange(start, start + len(q))

    def recall(self, cues, threshold: float | None = None) -> tuple[np.ndarray, list[set]]:
        """For each cue: the time index whose embedding best matches the cue's state, and the triples decoded from
        that embedding (the episode, recalled from a fragment)."""
        if not len(self.time_):
            raise AnytaskError("no episode is stored: call memorise(X) first")
        q = self.states(cues)
        t = (q @ self.time_.T).argmax(1)
        thr = self.threshold_ if threshold is None else threshold
        return t.numpy(), [self._decode_state(self.time_[i], thr) for i in t.tolist()]

    # -- concept learning -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def novelty(self, X) -> np.ndarray:
        """1 - the largest subject probability of each state: high when no index explains it."""
        return self._novelty(self.states(X))

    def _novelty(self, q: torch.Tensor) -> np.ndarray:
        return 1.0 - self.model_.logp(q, self.model_.A).exp().max(1).values.numpy()

    @torch.no_grad()
    def allocate(self, X, threshold: float = 0.5) -> np.ndarray:
        """Add a new index for every row whose novelty exceeds ``threshold``; its embedding is the state, scaled to
        the mean norm of the learned rows. Returns the new index per row (-1 where none was added)."""
        q = self.states(X)
        nov = self._novelty(q)  # the states once, not again inside novelty()
        new = np.full(len(q), -1)
        norm = self.model_.A[: self.n_base_concepts_].norm(dim=1).mean()
        rows = []
        for i in np.flatnonzero(nov > threshold):
            new[i] = len(self.model_.A) + len(rows)
            rows.append(q[i] / q[i].norm() * norm)
        if rows:
            self.model_.A = nn.Parameter(torch.cat([self.model_.A, torch.stack(rows)]))
        return new


@TRIPLE_DECODERS.register("flat_triples", reference="the flat baseline for card 37 (one logistic output per triple)",
                   summary="multi-label logistic regression over every triple seen in training, same features",
                   input="features", output="triples")
class FlatTriples(_Fitted):
    def __init__(self, *, epochs: int = 150, batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-5,
                 threshold: float | None = None, seed: int = 0) -> None:
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.threshold, self.seed = threshold, seed

    def _train(self, X, y, X_all, y_all) -> None:
        self.triples_ = sorted({tuple(map(int, t)) for ts in y_all for t in ts})
        col = {t: j for j, t in enumerate(self.triples_)}
        Y = np.zeros((len(X), len(self.triples_)), dtype=np.float32)
        for i, ts in enumerate(y):
            Y[i, [col[tuple(map(int, t))] for t in ts]] = 1
        torch.manual_seed(self.seed)
        self.model_ = nn.Linear(X.shape[1], len(self.triples_))
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs * max(1, len(X) // self.batch_size)):
            b = torch.randint(len(X), (min(self.batch_size, len(X)),), generator=gen)
            loss = nn.functional.binary_cross_entropy_with_logits(self.model_(Xt[b]), Yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.model_.eval()

    @torch.no_grad()
    def decode(self, X, threshold: float | None = None) -> list[set[tuple[int, int, int]]]:
        check_is_fitted(self, "model_")
        t = self.threshold_ if threshold is None else threshold
        p = torch.sigmoid(self.model_(torch.as_tensor(_check(X)))).numpy()
        return [{self.triples_[j] for j in np.flatnonzero(row >= t)} for row in p]
