"""Synthetic multi-task label functions with a conflict knob, over any features (real MiniLM embeddings in the
benchmark), so every multi-task method can be plotted against how much its tasks agree.

``conflict_tasks(X, n_tasks, rho)`` draws task directions in the whitened space of the features' top
``rank`` principal components, ``w_t = sqrt(|rho|) s_t u + sqrt(1 - |rho|) v_t`` with a shared unit ``u`` and
private units ``v_t`` orthogonal to it and to each other, so two tasks' directions have cosine ``rho`` when
``rho >= 0`` (1 = identical tasks, 0 = independent); for ``rho < 0`` the signs ``s_t`` alternate, and tasks of
opposite sign have cosine ``rho`` (conflicting: the same evidence means the opposite label). Labels are
``1[z . w_t > 0]`` on whitened coordinates ``z``, each flipped with probability ``flip``.
"""

from __future__ import annotations

import numpy as np

from anytask.core.errors import AnytaskError


def task_directions(n_tasks: int, rho: float, dim: int, rng) -> np.ndarray:
    """``(n_tasks, dim)`` unit directions with pairwise cosine ``rho`` (alternating sign of the shared part when
    ``rho < 0``)."""
    if not -1 <= rho <= 1:
        raise AnytaskError(f"conflict rho must lie in [-1, 1], got {rho}")
    if dim < n_tasks + 1:
        raise AnytaskError(f"need at least {n_tasks + 1} dimensions for {n_tasks} tasks, got {dim}")
    Q = np.linalg.qr(rng.normal(size=(dim, n_tasks + 1)))[0]                  # orthonormal u, v_1..v_T
    u, V = Q[:, 0], Q[:, 1:].T
    signs = np.ones(n_tasks) if rho >= 0 else np.where(np.arange(n_tasks) % 2 == 0, 1.0, -1.0)
    return np.sqrt(abs(rho)) * signs[:, None] * u[None] + np.sqrt(1 - abs(rho)) * V


def conflict_tasks(X: np.ndarray, n_tasks: int, rho: float, *, rank: int = 32, flip: float = 0.05,
                   seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Binary labels ``(n_tasks, N)`` for every row of ``X`` (N, D), and the directions (in whitened PCA space)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise AnytaskError(f"conflict_tasks needs an (N, D) feature matrix with N >= 2, got shape {X.shape}")
    rng = np.random.default_rng(seed)
    Xc = X - X.mean(0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    rank = min(rank, int((S > 1e-8 * S[0]).sum()))
    Z = U[:, :rank] * np.sqrt(len(X))                                         # whitened top-rank coordinates
    W = task_directions(n_tasks, rho, rank, rng)
    Y = (Z @ W.T > 0).astype(int).T                                           # (T, N)
    flips = rng.random(Y.shape) < flip
    return [np.where(f, 1 - y, y) for y, f in zip(Y, flips)], W
