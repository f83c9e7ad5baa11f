"""Synthetic new signals for the frozen embedding space: "voxels" that encode a text's embedding (BrainCLIP,
card 12) and multi-stain "slides" as bags of patch vectors (MADELEINE, card 13).

``synthetic_voxels(E, seed)``: ``v = ReLU(E R + b) + noise`` for a fixed random ``R`` (D -> n_voxels) per
subject (its seed), with Gaussian noise whose variance makes the noise-free signal explain ``r2`` of each voxel's
variance on average (the "oracle R²" of an encoding model that knew ``R``). Another seed is another subject.

``synthetic_slides(n, seed)``: each slide has a latent ``u`` (``latent``-d) that decides its label and a
nuisance ``w_s`` per stain that does not. Stain ``s`` gives a bag of 50-200 patches; a fraction ``signal`` of them
carry ``M_s (u + eta)``, the rest ``B_s (w_s + eta)``, both plus noise, with random maps ``M_s``, ``B_s`` (latent
-> ``dim``) per stain. Mean pooling mixes the label's signal with each stain's nuisance; an encoder that attends to
the right patches and keeps what the stains share recovers ``u``. ``missing`` drops non-first stains at random
(None in the bag list), as slides without a counterpart stain.
"""

from __future__ import annotations

import numpy as np

from anytask.core.errors import AnytaskError


def synthetic_voxels(E: np.ndarray, *, n_voxels: int = 1000, r2: float = 0.3, seed: int = 0) -> np.ndarray:
    """``(N, n_voxels)`` float32 voxel patterns of one synthetic subject for embeddings ``E (N, D)``."""
    if not 0 < r2 <= 1:
        raise AnytaskError(f"r2 must lie in (0, 1], got {r2}")
    E = np.asarray(E, dtype=np.float64)
    rng = np.random.default_rng(seed)
    R = rng.normal(size=(E.shape[1], n_voxels))  # unit-norm rows of E give unit-variance projections
    b = rng.normal(scale=0.5, size=n_voxels)
    signal = np.maximum(E @ R + b, 0.0)
    var = signal.var(axis=0).mean()
    sigma = np.sqrt(var * (1 - r2) / r2) if r2 < 1 else 0.0
    noise = np.random.default_rng(seed + 10_007).normal(scale=sigma, size=signal.shape)
    return (signal + noise).astype(np.float32)


def synthetic_slides(n: int = 2000, *, stains: int = 3, latent: int = 8, dim: int = 64, classes: int = 4,
                     signal: float = 0.2, min_patches: int = 50, max_patches: int = 200, noise: float = 0.5,
                     missing: float = 0.0, seed: int = 0) -> tuple[list[list[np.ndarray | None]], np.ndarray]:
    """``(bags, y)``: ``bags[i][s]`` is slide i's ``(patches, dim)`` float32 bag for stain s (None when missing),
    ``y`` its class (argmax of a fixed projection of ``u``, balanced by construction of the projection)."""
    if stains < 2:
        raise AnytaskError("multi-stain slides need at least 2 stains")
    rng = np.random.default_rng(seed)
    maps = np.random.default_rng(12_345)  # the stains' maps and the label rule are the same for every seed
    M = maps.normal(size=(stains, latent, dim)) / np.sqrt(latent)
    B = maps.normal(size=(stains, latent, dim)) / np.sqrt(latent)
    W = maps.normal(size=(latent, classes))
    U = rng.normal(size=(n, latent))
    y = np.argmax(U @ W, axis=1)
    bags: list[list[np.ndarray | None]] = []
    for i in range(n):
        views: list[np.ndarray | None] = []
        for s in range(stains):
            if s > 0 and missing and rng.random() < missing:
                views.append(None)
                continue
            k = int(rng.integers(min_patches, max_patches + 1))
            carries = rng.random(k) < signal
            w = rng.normal(size=latent) * 2.0  # this stain's nuisance for this slide
            z = np.where(carries[:, None], U[i], w) + 0.3 * rng.normal(size=(k, latent))
            x = np.einsum("kl,kld->kd", z, np.where(carries[:, None, None], M[s], B[s]))
            views.append((x + noise * rng.normal(size=x.shape)).astype(np.float32))
        bags.append(views)
    return bags, y
