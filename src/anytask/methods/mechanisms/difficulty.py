"""Inductive-bias complexity: how much information a task needs beyond its training data.

Boopathy, Liu, Hwang, Ge, Mohammedsaleh & Fiete 2023, "Model-agnostic Measure of Generalization
Difficulty", ICML 2023, https://arxiv.org/abs/2305.01034 (card 27). Hypotheses are band-limited
functions on the data manifold (Laplace-Beltrami eigenfunctions up to the frequency the smallest
distance between classes allows); Ĩ is minus the log of the fraction of hypotheses that fit the
training data and also generalise to error ε, in closed form:

    M = 2πR / δ,  K = (sqrt((m-1)² + 4M²) - (m-1)) / 2,  E = C(m+K, m) + C(m+K-1, m)
    L_f = K sqrt(D) / R
    ln W = ½ ln(m/6) + [ln 2 + (m+1)/2 ln π + ln P - lnΓ((m+1)/2)] / m + ln R - ln(n) / m
    Ĩ (bits) = (2 D P E - n D) · [log₂ B + ½ log₂ D + ½ log₂ P - log₂ ε + log₂ L_f + ln W / ln 2]

with n training points, intrinsic dimension m, largest norm R, P classes (D = P - 1 outputs), B = 1.
Everything is computed in logs (E is astronomically large and K is not an integer: the binomials go
through lnΓ). The card's reference values (MNIST 1.49e16 ... ImageNet 3.58e41 bits) are the unit test.

The inputs are estimated from a data set: m by the maximum-likelihood estimator of Levina & Bickel
(k = 5 neighbours), δ as the smallest distance between points of different classes (on a random subset,
after dropping duplicates, or extrapolated by extreme-value theory), R as the largest norm. They
depend on the space the data is measured in (raw pixels in [0, 1], or a backbone's unit embeddings):
say which.
"""

from __future__ import annotations

import math

import numpy as np

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_features
from anytask.methods.mechanisms.base import ANALYSES


def _ln_binom(a: float, b: float) -> float:
    from scipy.special import gammaln

    return float(gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1))


def complexity_bits(*, error: float, n: int, m: float, R: float, classes: int, delta: float, B: float = 1.0) -> dict:
    """Ĩ in bits for the given inputs (see the module docstring), with its parts. Raises on non-positive inputs;
    ``hypotheses_left`` is False when the training data pins down every hypothesis (2DPE <= nD), and then, as
    when the per-dimension term is not positive, Ĩ is reported as 0 bits rather than a product of negatives."""
    for name, value in (("error", error), ("n", n), ("m", m), ("R", R), ("delta", delta), ("B", B)):
        if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value) and value > 0):
            raise AnytaskError(f"{name}={value!r}: the difficulty formula needs a finite positive number")
    if not 0 < error < 1:
        raise AnytaskError(f"error={error!r}: the target error rate must be in (0, 1)")
    if int(classes) < 2:
        raise AnytaskError(f"classes={classes!r}: a classification task has at least 2 classes")
    P, D = int(classes), int(classes) - 1
    M = 2 * math.pi * R / delta
    K = (math.sqrt((m - 1) ** 2 + 4 * M * M) - (m - 1)) / 2
    ln_E = float(np.logaddexp(_ln_binom(m + K, m), _ln_binom(m + K - 1, m)))
    L_f = K * math.sqrt(D) / R
    from scipy.special import gammaln

    ln_W = (0.5 * math.log(m / 6) + (math.log(2) + (m + 1) / 2 * math.log(math.pi) + math.log(P)
                                     - float(gammaln((m + 1) / 2))) / m + math.log(R) - math.log(n) / m)
    ln_dim = math.log(2 * D * P) + ln_E  # ln dim Θ
    ln_nD = math.log(n * D)
    # dim Θ_q = dim Θ - nD, in logs when dim Θ dwarfs nD (it usually does, by hundreds of orders of magnitude)
    if ln_dim > ln_nD:
        dim_q = math.exp(ln_dim) * -math.expm1(ln_nD - ln_dim) if ln_dim < 700 else math.inf
        ln_dim_q = ln_dim + math.log1p(-math.exp(ln_nD - ln_dim))
    else:
        dim_q, ln_dim_q = math.exp(ln_dim) - n * D, -math.inf
    per_dim = (math.log2(B) + 0.5 * math.log2(D) + 0.5 * math.log2(P) - math.log2(error) + math.log2(L_f)
               + ln_W / math.log(2))
    if ln_dim > ln_nD and per_dim > 0:
        log10_bits = (ln_dim_q + math.log(per_dim)) / math.log(10)
        bits = dim_q * per_dim if math.isfinite(dim_q) else math.inf
    else:  # the data pins down every hypothesis, or any fitted one generalises: nothing left to supply
        log10_bits, bits = None, 0.0
    return {"bits": bits, "log10_bits": log10_bits, "hypotheses_left": ln_dim > ln_nD, "M": M, "K": K,
            "log10_eigenfunctions": ln_E / math.log(10), "L_f": L_f, "log_W": ln_W, "bits_per_dimension": per_dim,
            "inputs": {"error": error, "n": int(n), "m": m, "R": R, "classes": P, "delta": delta, "B": B}}


def intrinsic_dimension(X, *, k: int = 5, sample: int = 10_000, seed: int = 0) -> float:
    """Levina & Bickel's maximum-likelihood intrinsic dimension (as the paper's code averages it): the inverse of
    the mean log-ratio between each point's k-th and its 1st..(k-1)-th neighbour distances, over up to ``sample``
    points against the whole set (duplicates dropped first: a zero distance has no log)."""
    from sklearn.neighbors import NearestNeighbors

    X = np.unique(check_features(X).astype(np.float64), axis=0)
    if len(X) <= k + 1:
        raise AnytaskError(f"{len(X)} distinct points: the intrinsic dimension with k={k} needs more than {k + 1}")
    rng = np.random.default_rng(seed)
    query = X[rng.choice(len(X), size=min(sample, len(X)), replace=False)]
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(query)  # column 0: the point itself
    ratios = np.log(dist[:, k:k + 1]) - np.log(dist[:, 1:k])
    return float(1.0 / np.mean(ratios))


def class_distance(X, y, *, method: str = "sample", sample: int = 5_000, seed: int = 0, pairs: int = 2_000_000,
                   top: int = 2_000) -> float:
    """δ, the smallest distance between points of different classes, duplicates dropped first: ``"sample"``
    takes the minimum over a random subset of ``sample`` points; ``"evt"`` samples ``pairs`` cross-class pairs
    and extrapolates the tail of 1/distance to all of them (the Dekkers-Einmahl-de Haan moment estimator over
    the ``top`` largest), never above the sampled minimum."""
    from sklearn.metrics import pairwise_distances

    X, y = check_features(X).astype(np.float64), np.asarray(y)
    if len(y) != len(X):
        raise AnytaskError(f"X has {len(X)} rows but y has {len(y)} labels")
    X, first = np.unique(X, axis=0, return_index=True)
    y = y[first]
    if len(np.unique(y)) < 2:
        raise AnytaskError("δ needs points of at least two classes")
    rng = np.random.default_rng(seed)
    if method == "sample":
        idx = rng.choice(len(X), size=min(sample, len(X)), replace=False)
        d = pairwise_distances(X[idx])
        d[y[idx][:, None] == y[idx][None, :]] = np.inf
        return float(d.min())
    if method != "evt":
        raise AnytaskError(f"unknown δ method {method!r}; use 'sample' or 'evt'")
    i, j = rng.integers(len(X), size=pairs), rng.integers(len(X), size=pairs)
    keep = y[i] != y[j]
    i, j = i[keep], j[keep]
    inv = np.concatenate([1.0 / np.linalg.norm(X[i[s:s + 50_000]] - X[j[s:s + 50_000]], axis=1)
                          for s in range(0, len(i), 50_000)])  # in chunks: pairs x features can be gigabytes
    inv.sort()
    n_pairs, top = len(inv), min(top, len(inv) - 1)
    threshold, tail = inv[-top - 1], inv[-top:]
    logs = np.log(tail) - np.log(threshold)
    m1, m2 = logs.mean(), (logs ** 2).mean()
    gamma = m1 + 1 - 0.5 / (1 - m1 * m1 / m2)
    classes, counts = np.unique(y, return_counts=True)
    total = len(X) ** 2 * (1 - np.sum((counts / len(X)) ** 2))  # ordered cross-class pairs
    a = top / n_pairs * total
    extreme = threshold + threshold * m1 * ((a ** gamma - 1) / gamma if abs(gamma) > 1e-12 else math.log(a))
    return float(min(1.0 / extreme, 1.0 / tail[-1]))


@ANALYSES.register("inductive_bias_complexity", reference="Boopathy et al. 2023, https://arxiv.org/abs/2305.01034",
                   summary="bits a task needs beyond its training data (closed form on the data manifold), with "
                           "estimators of its inputs", input="features", output="values")
def task_difficulty(X, y, *, error: float = 0.01, m: float | None = None, delta: float | str = "sample",
                    k: int = 5, seed: int = 0) -> dict:
    """Ĩ of the classification task (X, y) at target ``error``: m, δ (``"sample"``, ``"evt"`` or a number) and R
    estimated from the data unless given; n is the number of distinct points."""
    X = check_features(X)
    y = np.asarray(y)
    distinct = np.unique(X.astype(np.float64), axis=0)
    m_hat = float(np.round(intrinsic_dimension(X, k=k, seed=seed))) if m is None else float(m)
    if m_hat < 1:
        m_hat = 1.0
    d = class_distance(X, y, method=delta, seed=seed) if isinstance(delta, str) else float(delta)
    R = float(np.linalg.norm(distinct, axis=1).max())
    out = complexity_bits(error=error, n=len(distinct), m=m_hat, R=R, classes=len(np.unique(y)), delta=d)
    out["estimated"] = {"m": m is None, "delta": delta if isinstance(delta, str) else "given", "R": True}
    return out
