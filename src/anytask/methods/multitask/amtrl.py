"""Active multi-task representation learning with Lasso (Wang, Chen, Jamieson & Du, ICML 2023,
https://arxiv.org/abs/2306.02556): how many samples to draw from each source task for a data-poor target.

Sources m = 1..M share a representation B (d x k); the target's head is a combination of theirs, ``w_0 = W nu``.
Chen et al. (2022) sample sources in proportion to ``nu2**2`` with the L2-minimal ``nu2``; this paper shows the
L1-minimal ``nu1`` dominates (allocation ``n_m ~ |nu1_m|``, sparse) and estimates it by LASSO when unknown:

    epoch 1: uniform;  epoch i > 1: n_m = max(N_i |nu_m| / ||nu||_1, n_min) with nu = LASSO(W^, w^_0)
    each epoch: fit B^, W^ on everything drawn so far; w^_0 by least squares on the target's samples

``ALLOCATIONS`` holds the rules (``uniform``, ``nu2``, ``nu1``); ``relevance`` estimates nu from heads
(``l1`` by LASSO or, exactly, by the linear program min ||nu||_1 s.t. W nu = w_0; ``l2`` by the pseudo-inverse);
``allocate`` turns a relevance into integer sample counts summing to the budget. ``LinearSetting`` and
``run_linear`` are the paper's synthetic linear setting (card 25 a), the representation fitted by alternating
least squares; ``anytask.experiments`` runs the neural version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

ALLOCATIONS: Registry = Registry("source allocation", family="multitask")


def relevance(W: np.ndarray, w0: np.ndarray, kind: str = "l1", *, alpha: float | None = None) -> np.ndarray:
    """nu (M,) with ``W nu ~= w0`` for heads ``W`` (k, M) and target head ``w0`` (k,).

    ``l2``: the minimum-norm solution. ``l1`` with ``alpha=None``: the exact minimum-L1 solution (a linear
    program, scipy); with ``alpha``: LASSO, ``argmin 1/(2k) ||W nu - w0||^2 + alpha ||nu||_1`` (scikit-learn).
    """
    W, w0 = np.asarray(W, dtype=np.float64), np.asarray(w0, dtype=np.float64).ravel()
    if W.ndim != 2 or W.shape[0] != len(w0):
        raise AnytaskError(f"relevance: heads W must be (k, M) and w0 (k,); got {W.shape} and {w0.shape}")
    if kind == "l2":
        return np.linalg.pinv(W) @ w0
    if kind != "l1":
        raise AnytaskError(f"relevance kind {kind!r}: use 'l1' or 'l2'")
    if alpha is None:
        from scipy.optimize import linprog

        k, M = W.shape  # nu = p - q, p, q >= 0: min sum(p + q) s.t. W (p - q) = w0
        res = linprog(np.ones(2 * M), A_eq=np.hstack([W, -W]), b_eq=w0, bounds=(0, None), method="highs")
        if not res.success:
            raise AnytaskError(f"relevance: no nu with W nu = w0 ({res.message}); the target head is not in the "
                               "span of the source heads — use alpha= for the LASSO estimate")
        return res.x[:M] - res.x[M:]
    from sklearn.linear_model import Lasso

    return Lasso(alpha=alpha, fit_intercept=False, max_iter=20000, tol=1e-8).fit(W, w0).coef_


def allocate(weights: np.ndarray, budget: int, *, n_min: int = 0) -> np.ndarray:
    """Integer counts proportional to ``weights`` (>= 0) that sum to ``budget``, each at least ``n_min``
    (largest-remainder rounding). All-zero weights fall back to uniform."""
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0)
    M = len(w)
    if budget < n_min * M:
        raise AnytaskError(f"allocate: budget {budget} is below n_min={n_min} for each of {M} sources")
    rest = budget - n_min * M
    if w.sum() <= 0:
        w = np.ones(M)
    share = rest * w / w.sum()
    n = np.floor(share).astype(int)
    left = rest - n.sum()
    if left:
        n[np.argsort(-(share - n), kind="stable")[:left]] += 1
    return n + n_min


@ALLOCATIONS.register("uniform", reference="the baseline: every source gets the same share", saveable=False)
def uniform(nu: np.ndarray) -> np.ndarray:
    """Every source the same share, whatever its relevance."""
    return np.ones(len(nu))


@ALLOCATIONS.register("nu2", reference="Chen et al. 2022, Active Multi-Task Representation Learning, "
                      "https://arxiv.org/abs/2202.00911 (n_m ~ nu2_m^2)", saveable=False)
def nu2(nu: np.ndarray) -> np.ndarray:
    """Sources in proportion to the squared L2-minimal relevance (dense)."""
    return np.asarray(nu, dtype=np.float64) ** 2


@ALLOCATIONS.register("nu1", reference="Wang et al. 2023, Improved Active Multi-Task Representation Learning via "
                      "Lasso, https://arxiv.org/abs/2306.02556 (n_m ~ |nu1_m|)", saveable=False)
def nu1(nu: np.ndarray) -> np.ndarray:
    """Sources in proportion to the absolute L1-minimal (LASSO) relevance (sparse)."""
    return np.abs(np.asarray(nu, dtype=np.float64))


RELEVANCE_KIND = {"uniform": "l2", "nu2": "l2", "nu1": "l1"}


# -- the synthetic linear setting (card 25 a) -----------------------------------------------------------------

@dataclass
class LinearSetting:
    """``y_m = <B^T x, w_m> + noise``, x ~ N(0, I_d); target head ``w_0 = W nu_true`` with ``sparsity`` non-zeros."""

    d: int = 50
    k: int = 5
    M: int = 100
    sparsity: int = 5
    noise: float = 1.0
    seed: int = 0

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self.B = np.linalg.qr(rng.normal(size=(self.d, self.k)))[0]            # (d, k), orthonormal
        self.W = rng.normal(size=(self.k, self.M))                             # (k, M)
        self.nu_true = np.zeros(self.M)
        support = rng.choice(self.M, self.sparsity, replace=False)
        self.nu_true[support] = rng.choice([-1, 1], self.sparsity) * rng.uniform(0.5, 1.5, self.sparsity)
        self.w0 = self.W @ self.nu_true

    def sample(self, m: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """n draws of source m (or the target, m = -1)."""
        w = self.w0 if m < 0 else self.W[:, m]
        X = rng.normal(size=(n, self.d))
        return X, X @ self.B @ w + self.noise * rng.normal(size=n)

    def excess_risk(self, B_hat: np.ndarray, w0_hat: np.ndarray) -> float:
        """E_x (x^T (B^ w^_0 - B w_0))^2 = ||B^ w^_0 - B w_0||^2 for isotropic x."""
        return float(np.sum((B_hat @ w0_hat - self.B @ self.w0) ** 2))


def fit_representation(data: list[tuple[np.ndarray, np.ndarray]], k: int, *, iters: int = 15, ridge: float = 1e-6):
    """``B^ (d, k)``, ``W^ (k, M)`` minimising ``sum_m sum_j (y_mj - x_mj^T B w_m)^2`` by alternating least squares,
    started from the top-k left singular vectors of ``[X_m^T y_m]_m``. A source with no samples gets a zero head."""
    d = next(X.shape[1] for X, _ in data if len(X))
    Z = np.stack([X.T @ y if len(y) else np.zeros(d) for X, y in data], 1)    # (d, M)
    B = np.linalg.svd(Z, full_matrices=False)[0][:, :k]
    W = np.zeros((k, len(data)))
    for _ in range(iters):
        for m, (X, y) in enumerate(data):
            if len(y):
                F = X @ B
                W[:, m] = np.linalg.solve(F.T @ F + ridge * np.eye(k), F.T @ y)
        A = np.zeros((d * k, d * k))
        b = np.zeros(d * k)
        for m, (X, y) in enumerate(data):  # x^T B w = (w kron x)^T vec(B) (column-major vec)
            if len(y):
                G = X.T @ X
                A += np.kron(np.outer(W[:, m], W[:, m]), G)
                b += np.kron(W[:, m], X.T @ y)
        B = np.linalg.solve(A + ridge * np.eye(d * k), b).reshape(k, d).T
        B = np.linalg.qr(B)[0]  # only the span matters; heads are refitted next round
    for m, (X, y) in enumerate(data):
        if len(y):
            F = X @ B
            W[:, m] = np.linalg.solve(F.T @ F + ridge * np.eye(k), F.T @ y)
    return B, W


def run_linear(setting: LinearSetting, rule: str, budgets: list[int], *, n_target: int = 20, n_min: int = 0,
               lasso_alpha: float | str = "auto", oracle: bool = False, seed: int = 0) -> list[dict]:
    """The epoch loop of the paper on ``setting``: epoch i draws ``budgets[i]`` fresh source samples (uniform in the
    first, then by ``rule``), refits, and records the target's excess risk against the total drawn so far, and
    how well the estimated relevance's support matches the true one (the known nu1 / nu2 on the true heads).
    ``oracle=True`` allocates by the true relevance (known nu1 / nu2) from the first epoch on."""
    ALLOCATIONS.get(rule)
    rng = np.random.default_rng(seed)
    kind = RELEVANCE_KIND[rule]
    X0, y0 = setting.sample(-1, n_target, rng)
    data = [(np.zeros((0, setting.d)), np.zeros(0)) for _ in range(setting.M)]
    true_nu = relevance(setting.W, setting.w0, kind)
    rows, nu_hat, total = [], None, 0
    for i, N in enumerate(budgets):
        if oracle:
            weights = ALLOCATIONS.get(rule)(true_nu)
        elif i == 0 or rule == "uniform":
            weights = np.ones(setting.M)
        else:
            weights = ALLOCATIONS.get(rule)(nu_hat)
        counts = allocate(weights, N, n_min=n_min)
        for m, n in enumerate(counts):
            if n:
                X, y = setting.sample(m, int(n), rng)
                data[m] = (np.vstack([data[m][0], X]), np.concatenate([data[m][1], y]))
        total += N
        B, W = fit_representation(data, setting.k)
        F0 = X0 @ B
        w0 = np.linalg.lstsq(F0, y0, rcond=None)[0]
        seen = np.array([len(y) > 0 for _, y in data])
        if kind == "l1":
            alpha = lasso_alpha if lasso_alpha != "auto" else 0.5 * np.sqrt(np.log(setting.M) / max(total, 1))
            nu_hat = np.zeros(setting.M)
            nu_hat[seen] = relevance(W[:, seen], w0, "l1", alpha=float(alpha))
        else:
            nu_hat = np.zeros(setting.M)
            nu_hat[seen] = relevance(W[:, seen], w0, "l2")
        rows.append({"rule": rule, "oracle": oracle, "epoch": i, "total": int(total),
                     "excess_risk": setting.excess_risk(B, w0), "sources_used": int(seen.sum()),
                     "support_f1": _support_f1(nu_hat, true_nu)})
    return rows


def _support_f1(nu_hat: np.ndarray, nu_true: np.ndarray, tol: float = 1e-6) -> float:
    pred, true = np.abs(nu_hat) > tol, np.abs(nu_true) > tol
    tp = float((pred & true).sum())
    return 0.0 if tp == 0 else 2 * tp / (pred.sum() + true.sum())


# -- the neural version (card 25 b): a shared trunk with per-source linear heads ----------------------------------

def fit_trunk(sources: list[tuple[np.ndarray, np.ndarray]], *, dim: int = 64, steps: int = 300, batch_size: int = 256,
              lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0):
    """Train ``B^`` = Linear(D, dim) + ReLU shared by binary sources with one logistic head each (all sources with
    samples in every step, their losses averaged per source). Returns ``(trunk, W)``: the trunk as a function
    ``X -> features`` (numpy in, numpy out) and the heads ``W`` (dim, M), zero for sources without samples."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    used = [m for m, (_, y) in enumerate(sources) if len(y)]
    if not used:
        raise AnytaskError("fit_trunk: no source has samples")
    D = sources[used[0]][0].shape[1]
    trunk = nn.Sequential(nn.Linear(D, dim), nn.ReLU())
    heads = nn.Linear(dim, len(sources), bias=True)
    X = torch.from_numpy(np.concatenate([sources[m][0] for m in used]).astype(np.float32))
    y = torch.from_numpy(np.concatenate([sources[m][1] for m in used]).astype(np.float32))
    src = torch.from_numpy(np.concatenate([np.full(len(sources[m][1]), m) for m in used]))
    weight = 1.0 / torch.bincount(src, minlength=len(sources)).clamp_min(1).float()   # every source weighs the same
    opt = torch.optim.AdamW(list(trunk.parameters()) + list(heads.parameters()), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(y), (min(batch_size, len(y)),), generator=g)
        logits = heads(trunk(X[idx])).gather(1, src[idx].unsqueeze(1)).squeeze(1)
        w = weight[src[idx]]
        loss = (nn.functional.binary_cross_entropy_with_logits(logits, y[idx], reduction="none") * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    W = heads.weight.detach().numpy().T.copy()                                   # (dim, M)
    W[:, [m for m in range(len(sources)) if m not in set(used)]] = 0.0

    def features(A: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return trunk(torch.from_numpy(np.asarray(A, dtype=np.float32))).numpy()

    return features, W
