"""The in-context reasoning module: config, network, synthetic task priors, pre-training loop.

Papers: TART (Bhatia et al. 2023, https://arxiv.org/abs/2306.07536, card 04) trains a
transformer once, on synthetic in-context tasks only, and reuses it on any frozen
representation; BraInCoRL (Yu et al. 2025, https://arxiv.org/abs/2505.15813, card 41) lets
such a set transformer *emit the weights of a linear head* from support pairs. This module
does both, with three changes against TART's recipe (binary, PCA-16 + whitening, k > 16):

1. **Dimension-free.** The network never reads raw coordinates. After centring the features on
   the context mean and scaling them so the mean squared norm is 1, it reads only inner
   products: the context Gram matrix ``K = Z Z^T`` and the query rows ``Z_q Z^T``. Every
   coordinate of the backbone takes part (nothing is cut to 16 PCA dimensions), any backbone
   width works, and 1 example per class is enough (no whitening to invert).
2. **Class-equivariant.** The state is one vector per (context example, class) pair, and every
   operation is shared over classes (per-class channels, means over classes, a softmax over
   classes), so relabelling the classes relabels the output and any number of classes runs
   natively; no fixed label vocabulary and no output layer of fixed size.
3. **It emits a linear head.** The last layer reads out a coefficient ``alpha[i, c]`` per pair;
   the class-``c`` weight vector is ``w_c = sum_i alpha[i, c] z_i / n`` (the dual form every
   L2-regularised linear model has, by the representer theorem), plus a bias per class. A
   second read-out lets a query attend to the context through the kernel (a learned
   nearest-neighbour vote), so class shapes that are not linear are not lost.

Each layer mixes information along three axes: over examples, by softmax attention whose
logits add a learned multiple of ``K`` to query-key scores, and by a linear kernel message
``K H / n`` (one functional-gradient step of a kernel machine is exactly such a message); over
classes, by the mean and by a softmax over a learned score (what a multinomial likelihood
needs); and per class, by the mean over examples. Then a residual MLP. There are no positions:
the output does not depend on the order of the context (a test checks it).

Pre-training samples a fresh task for every episode from the priors in :func:`sample_tasks`
and minimises cross-entropy on held-out query points of the same task. The priors label
points of a pool of inputs (real embeddings of unrelated text when one is given, otherwise
anisotropic Gaussian points normalised to the sphere, as sentence embeddings are) by nearest
random anchors (topic-like clusters), by random linear functions, or by a Gaussian mixture,
with label noise and, sometimes, imbalanced contexts; 2 to ``max_classes`` classes (few more
often than many) and 1 to ``max_shots`` examples per class (log-uniform). The regression
module (``task="regression"``) learns from linear-Gaussian episodes instead
(:func:`sample_regression`) and keeps only the emitted linear head.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained


# --------------------------------------------------------------------------------------------
# config


@dataclass(frozen=True)
class ICLConfig:
    width: int = 32  # state size per (example, class) pair
    layers: int = 6
    hidden: int = 96  # MLP width
    task: str = "classification"  # or "regression" (one output channel, MSE)
    # pre-training
    steps: int = 3000
    batch_size: int = 16  # episodes per step
    lr: float = 1e-3
    max_classes: int = 20  # classes per synthetic task: 2..max_classes
    max_shots: int = 64  # examples per class in a synthetic context: 1..max_shots
    max_context: int = 512  # examples per synthetic context
    queries: int = 64  # query points per episode
    label_noise: float = 0.15  # up to this fraction of labels flipped
    seed: int = 0
    info: dict = field(default_factory=dict)  # how, where and on what it was trained


# --------------------------------------------------------------------------------------------
# network


def _pair_features(K: Tensor, Y: Tensor, counts: Tensor) -> Tensor:
    """Per-(example, class) inputs: label, centroid similarity, its contrast, norms, counts."""
    n = K.shape[-1]
    C = Y.shape[-1]
    S = K @ Y / counts.clamp_min(1).unsqueeze(-2)  # (B, n, C): mean similarity to class c
    S_con = S - S.mean(-1, keepdim=True)
    diag = torch.diagonal(K, dim1=-2, dim2=-1).unsqueeze(-1).expand_as(S)
    log_nc = torch.log(counts.clamp_min(1)).unsqueeze(-2).expand_as(S)
    log_n = torch.full_like(S, math.log(n))
    log_C = torch.full_like(S, math.log(C))
    return torch.stack([Y, S, S_con, diag, log_nc, log_n, log_C], dim=-1)  # (B, n, C, 7)


class Layer(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        d = width
        self.norm = nn.LayerNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.kv = nn.Linear(d, d, bias=False)
        self.kernel_bias = nn.Parameter(torch.tensor(1.0))
        self.class_score = nn.Linear(d, 1)
        self.mlp = nn.Sequential(nn.LayerNorm(5 * d + 1), nn.Linear(5 * d + 1, hidden), nn.GELU(),
                                 nn.Linear(hidden, d))

    def forward(self, H: Tensor, K: Tensor, cmask: Tensor) -> Tensor:
        """H: (B, n, C, d) pair states; K: (B, n, n) Gram matrix; cmask: (B, C) real classes."""
        B, n, C, d = H.shape
        h = self.norm(H)
        w = cmask.to(h.dtype)[:, None, :, None]  # (B, 1, C, 1)
        per_example = (h * w).sum(2) / w.sum(2)  # (B, n, d): mean over real classes
        logits = self.q(per_example) @ self.k(per_example).transpose(-1, -2) / math.sqrt(d)
        A = torch.softmax(logits + self.kernel_bias * K * math.sqrt(d), dim=-1)  # (B, n, n)
        V = self.v(h).reshape(B, n, C * d)
        attended = (A @ V).reshape(B, n, C, d)
        kernel_msg = (K @ self.kv(h).reshape(B, n, C * d) / n).reshape(B, n, C, d)
        score = self.class_score(h).squeeze(-1).masked_fill(~cmask[:, None, :], -1e9)
        p = torch.softmax(score, dim=-1).unsqueeze(-1)  # (B, n, C, 1): softmax over classes
        per_class = h.mean(1, keepdim=True).expand_as(h)  # (B, n, C, d): mean over examples
        x = torch.cat([h, attended, kernel_msg, per_example.unsqueeze(2).expand_as(h), per_class, p], -1)
        return H + self.mlp(x)


class Reasoner(Pretrained, nn.Module):
    """Context (features, labels) -> a linear head plus a kernel-attention read-out."""

    def __init__(self, config: ICLConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.embed = nn.Linear(7, d)
        self.layers = nn.ModuleList(Layer(d, config.hidden) for _ in range(config.layers))
        self.out_norm = nn.LayerNorm(d)
        self.alpha = nn.Linear(d, 1)  # dual coefficient per (example, class)
        self.bias = nn.Linear(d, 1)  # class bias from the class's mean state
        self.vote = nn.Linear(d, 1)  # value of each pair in the kernel-attention read-out
        self.vote_temp = nn.Parameter(torch.tensor(2.0))
        self.linear_scale = nn.Parameter(torch.tensor(4.0))

    # -- saving through anytask.core.io: config.json (the config) + model.safetensors (the weights)
    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        return {"config": asdict(self.config)}, dict(self.state_dict())

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "Reasoner":
        model = cls(ICLConfig(**extra["config"]))
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise AnytaskError(f"reasoning module weights do not match its config: missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]}")
        return model.eval().requires_grad_(False)

    def encode(self, Z: Tensor, Y: Tensor, cmask: Tensor) -> Tensor:
        """Z: (B, n, D) standardised context; Y: (B, n, C) one-hot (or targets for regression).

        Returns the final pair states (B, n, C, d)."""
        K = Z @ Z.transpose(-1, -2)
        counts = Y.sum(1) if self.config.task == "classification" else torch.full_like(Y[:, 0], Y.shape[1])
        H = self.embed(_pair_features(K, Y, counts))
        for layer in self.layers:
            H = layer(H, K, cmask)
        return self.out_norm(H)

    def heads(self, H: Tensor, Z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Linear head (B, C, D) weights and (B, C) biases, and (B, n, C) vote values."""
        n = Z.shape[1]
        alpha = self.alpha(H).squeeze(-1)  # (B, n, C)
        W = self.linear_scale * alpha.transpose(1, 2) @ Z / n  # (B, C, D)
        b = self.bias(H.mean(1)).squeeze(-1)  # (B, C)
        return W, b, self.vote(H).squeeze(-1)

    def read_context(self, X: Tensor, Y: Tensor, cmask: Tensor | None = None) -> dict[str, Tensor]:
        """Everything a prediction needs from the context X (B, n, D), Y (B, n, C): the
        standardisation, the emitted linear head and the vote values. Computed once per fit."""
        mu = X.mean(-2, keepdim=True)
        Z = X - mu
        scale = Z.pow(2).sum(-1).mean(-1).clamp_min(1e-12).sqrt()[:, None, None]  # (B, 1, 1)
        Z = Z / scale
        if cmask is None:
            cmask = torch.ones(Y.shape[0], Y.shape[2], dtype=torch.bool, device=Y.device)
        H = self.encode(Z, Y, cmask)
        W, b, votes = self.heads(H, Z)
        return {"mu": mu, "scale": scale, "Z": Z, "W": W, "b": b, "votes": votes, "cmask": cmask}

    def predict_logits(self, ctx: dict[str, Tensor], Q: Tensor) -> Tensor:
        """Query features Q (B, m, D) -> scores (B, m, C) (targets for regression)."""
        Zq = (Q - ctx["mu"]) / ctx["scale"]
        out = Zq @ ctx["W"].transpose(1, 2) + ctx["b"].unsqueeze(1)
        if self.config.task == "classification":
            n = ctx["Z"].shape[1]
            sims = Zq @ ctx["Z"].transpose(1, 2)  # (B, m, n)
            A = torch.softmax(self.vote_temp * (1 + math.log(n)) * sims, dim=-1)  # length-scaled
            out = (out + A @ ctx["votes"]).masked_fill(~ctx["cmask"][:, None, :], -1e9)
        return out

    def forward(self, X: Tensor, Y: Tensor, Q: Tensor, cmask: Tensor | None = None) -> Tensor:
        """Raw context X (B, n, D), one-hot Y (B, n, C), raw queries Q (B, m, D) -> (B, m, C)."""
        return self.predict_logits(self.read_context(X, Y, cmask), Q)


# --------------------------------------------------------------------------------------------
# synthetic task priors


def _gaussian_pool(n: int, dim: int, gen: torch.Generator) -> Tensor:
    """Anisotropic Gaussian points on the sphere: a 1/j spectrum plus a common offset."""
    spectrum = 1.0 / torch.arange(1, dim + 1, dtype=torch.float32)
    X = torch.randn(n, dim, generator=gen) * spectrum.sqrt() + 0.3 * torch.randn(1, dim, generator=gen)
    return F.normalize(X, dim=-1)


def _label(pool: Tensor, C: int, kind: str, gen: torch.Generator) -> Tensor:
    """Labels (N,) in 0..C-1 for the pool points, from one random labelling function."""
    N, D = pool.shape
    if kind == "anchors":  # nearest of C random anchor points (topic-like clusters)
        anchors = pool[torch.randint(N, (C,), generator=gen)]
        temp = 10 ** (torch.rand(1, generator=gen) * 1.5 + 0.5)  # sharpness 3..100
        gumbel = -torch.log(-torch.log(torch.rand(N, C, generator=gen).clamp(1e-9, 1 - 1e-9)))
        return (temp * pool @ anchors.T + gumbel).argmax(1)
    if kind == "linear":  # argmax of C random linear functions in the pool's own geometry
        centred = pool - pool.mean(0)
        basis = centred[torch.randint(N, (min(64, N),), generator=gen)]  # directions the data spans
        Wt = torch.randn(C, basis.shape[0], generator=gen) @ basis
        scores = centred @ Wt.T
        scores = scores / scores.std(0, keepdim=True).clamp_min(1e-6)
        temp = 10 ** (torch.rand(1, generator=gen) * 1.5)  # 1..30
        gumbel = -torch.log(-torch.log(torch.rand(N, C, generator=gen).clamp(1e-9, 1 - 1e-9)))
        return (temp * scores + gumbel).argmax(1)
    raise AnytaskError(f"unknown prior {kind!r}")


def _mixture(C: int, per_class: int, dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """A Gaussian mixture on the sphere with a shared anisotropic covariance."""
    spectrum = (1.0 / torch.arange(1, dim + 1, dtype=torch.float32)).sqrt()
    sep = 10 ** (torch.rand(1, generator=gen) * 1.0 - 0.5)  # class separation 0.3..3
    means = torch.randn(C, dim, generator=gen) * spectrum * sep
    y = torch.arange(C).repeat_interleave(per_class)
    X = means[y] + torch.randn(len(y), dim, generator=gen) * spectrum + 0.5 * torch.randn(1, dim, generator=gen)
    return F.normalize(X, dim=-1), y


def sample_tasks(batch: int, config: ICLConfig, gen: torch.Generator, pool: Tensor | None = None,
                 C: int | None = None, shots: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One batch of episodes sharing (n, C): context X (B, n, D), one-hot Y (B, n, C),
    queries Q (B, m, D) and their labels (B, m). Contexts are class-balanced (k per class),
    as a few-shot user's are, except 20 % of episodes whose class counts are skewed."""
    C = C or int(torch.randint(2, config.max_classes + 1, (1,), generator=gen))
    if shots is None:  # log-uniform over 1..max_shots, capped by the context size
        cap = max(1, min(config.max_shots, config.max_context // C))
        shots = int(round(math.exp(torch.rand(1, generator=gen).item() * math.log(cap))))
    n, m = C * shots, config.queries
    width = pool.shape[1] if pool is not None else 384
    Xs, Ys, Qs, yq = [], [], [], []
    while len(Xs) < batch:
        skewed = torch.rand(1, generator=gen).item() < 0.2
        counts = torch.full((C,), shots)
        if skewed and n >= 2 * C:  # redistribute: class sizes from a Dirichlet, at least 1 each
            share = torch.distributions.Dirichlet(torch.ones(C)).sample()
            counts = 1 + torch.floor(share * (n - C)).long()
            counts[0] += n - counts.sum()
        kind = ["anchors", "linear", "mixture"][int(torch.randint(3, (1,), generator=gen))]
        if kind == "mixture":  # zero-padded to the pool's width: inner products are unchanged
            dim = int(torch.randint(16, width + 1, (1,), generator=gen))
            X, y = _mixture(C, int(counts.max()) + m, dim, gen)
            X = F.pad(X, (0, width - dim))
        else:
            source = pool if pool is not None else _gaussian_pool(4096, 384, gen)
            sub = source[torch.randperm(len(source), generator=gen)[:4096]]
            X, y = sub, _label(sub, C, kind, gen)
        if any(int((y == c).sum()) < counts[c] + 1 for c in range(C)):
            continue  # a class too small for this context: draw another task
        ctx, rest = [], torch.ones(len(y), dtype=torch.bool)
        for c in range(C):
            members = torch.nonzero(y == c).squeeze(1)
            pick = members[torch.randperm(len(members), generator=gen)[: counts[c]]]
            ctx.append(pick)
            rest[pick] = False
        ctx = torch.cat(ctx)
        ctx = ctx[torch.randperm(len(ctx), generator=gen)]
        others = torch.nonzero(rest).squeeze(1)
        q = others[torch.randperm(len(others), generator=gen)[:m]]
        if len(q) < m:
            continue
        labels = y.clone()
        noise = torch.rand(1, generator=gen).item() * config.label_noise
        flip = torch.rand(len(y), generator=gen) < noise
        labels[flip] = torch.randint(C, (int(flip.sum()),), generator=gen)
        Xs.append(X[ctx])
        Ys.append(F.one_hot(labels[ctx], C).float())
        Qs.append(X[q])
        yq.append(labels[q])
    return torch.stack(Xs), torch.stack(Ys), torch.stack(Qs), torch.stack(yq)


def sample_regression(batch: int, config: ICLConfig, gen: torch.Generator, pool: Tensor | None = None,
                      n: int | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Linear-Gaussian regression episodes, as BraInCoRL's voxel model (y = w.x + c + noise):
    2..64 correlated Gaussian inputs (a random mixing matrix), weights dense or sparse, signal-
    to-noise 0.1..10; with a pool, half the batches use its points and a rank-<=16 weight."""
    n = n or int(round(math.exp(torch.rand(1, generator=gen).item() * math.log(config.max_context / 2)))) + 2
    m = config.queries
    if pool is not None and torch.rand(1, generator=gen).item() < 0.5:
        idx = torch.stack([torch.randperm(len(pool), generator=gen)[: n + m] for _ in range(batch)])
        X = pool[idx]
        D = X.shape[-1]
        rank = int(torch.randint(1, 17, (1,), generator=gen))
        w = torch.randn(batch, D, rank, generator=gen) @ torch.randn(batch, rank, 1, generator=gen)
    else:
        D = int(round(math.exp(torch.rand(1, generator=gen).item() * math.log(64)))) + 1
        mix = torch.randn(batch, D, D, generator=gen) * 0.5 + torch.eye(D)
        X = torch.randn(batch, n + m, D, generator=gen) @ mix
        keep = torch.rand(batch, D, 1, generator=gen) < torch.rand(batch, 1, 1, generator=gen) * 0.8 + 0.2
        w = torch.randn(batch, D, 1, generator=gen) * keep
    signal = (X - X[:, :n].mean(1, keepdim=True)) @ w
    signal = signal / signal.std(1, keepdim=True).clamp_min(1e-6)
    snr = 10 ** (torch.rand(batch, 1, 1, generator=gen) * 2 - 1)  # 0.1..10
    y = signal * snr.sqrt() + torch.randn(batch, n + m, 1, generator=gen)
    return X[:, :n], y[:, :n], X[:, n:], y[:, n:, 0]


# --------------------------------------------------------------------------------------------
# pre-training


def episode_loss(model: Reasoner, X: Tensor, Y: Tensor, Q: Tensor, yq: Tensor) -> tuple[Tensor, Tensor]:
    if model.config.task == "regression":
        mu, sd = Y.mean(1, keepdim=True), Y.std(1, keepdim=True).clamp_min(1e-6)
        pred = model(X, (Y - mu) / sd, Q)[..., 0] * sd[..., 0] + mu[..., 0]
        err = (pred - yq).pow(2).mean(1) / yq.var(1).clamp_min(1e-6)
        return err.mean(), (1 - err).mean()  # loss, R^2
    logits = model(X, Y, Q)
    loss = F.cross_entropy(logits.flatten(0, 1), yq.flatten())
    return loss, (logits.argmax(-1) == yq).float().mean()


def validation_set(config: ICLConfig, pool: Tensor | None, episodes: int = 12, seed: int = 1234):
    """A fixed set of synthetic tasks (one batch per (classes, shots) cell) to track training."""
    gen = torch.Generator().manual_seed(seed)
    if config.task == "regression":
        return [((None, n), sample_regression(episodes, config, gen, pool, n=n)) for n in (5, 20, 100)]
    cells = [(2, 2), (2, 16), (5, 4), (5, 32), (10, 8), (20, 4)]
    return [((C, k), sample_tasks(episodes, config, gen, pool, C=C, shots=k)) for C, k in cells]


@torch.no_grad()
def evaluate(model: Reasoner, val) -> dict:
    model.eval()
    out = {}
    for cell, batch in val:
        _, acc = episode_loss(model, *batch)
        out["x".join(str(c) for c in cell if c is not None)] = round(float(acc), 4)
    out["mean"] = round(float(np.mean(list(out.values()))), 4)
    model.train()
    return out


def pretrain(config: ICLConfig, pool: Tensor | None = None, *, log=print, eval_every: int = 100,
             time_budget_s: float | None = None) -> tuple[Reasoner, list[dict]]:
    """The explicit loop: fresh synthetic tasks every step, Adam, cosine decay, clipping.

    Returns the model and a log with training loss and the synthetic validation metric."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = Reasoner(config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    val = validation_set(config, pool)
    history, start, running = [], time.perf_counter(), []
    for step in range(1, config.steps + 1):
        # cosine decay over the steps, or over the time budget if that runs out first
        progress = step / config.steps
        if time_budget_s:
            progress = max(progress, (time.perf_counter() - start) / time_budget_s)
        lr = config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * min(1.0, step / 100)
        for group in opt.param_groups:
            group["lr"] = lr
        if config.task == "regression":
            batch = sample_regression(config.batch_size, config, gen, pool)
        else:  # class counts skewed towards few (u^2), so many-class tasks are seen but do not dominate
            u = torch.rand(1, generator=gen).item()
            C = 2 + int(u * u * (config.max_classes - 1))
            batch = sample_tasks(config.batch_size, config, gen, pool, C=C)
        loss, _ = episode_loss(model, *batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        elapsed = time.perf_counter() - start
        last = step == config.steps or (time_budget_s is not None and elapsed > time_budget_s)
        if step % eval_every == 0 or last:
            row = {"step": step, "seconds": round(elapsed, 1), "lr": lr,
                   "train_loss": round(float(np.mean(running)), 4), "val": evaluate(model, val)}
            running = []
            history.append(row)
            log(json.dumps(row))
        if last:
            break
    return model, history
