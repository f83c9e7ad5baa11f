"""Sparse autoencoder over frozen embeddings: the "discover" step of DN-CBM.

Rao et al. 2024, Discover-then-Name, https://arxiv.org/abs/2407.14499 (card 03). The
architecture follows the released code: a tied pre-encoder / post-decoder bias ``b``,
``f = ReLU(W_e (x - b) + b_e)``, ``x_hat = W_d f + b``, decoder columns renormalised to unit
norm after every step (otherwise the L1 penalty is "cheated" by shrinking codes and growing
the decoder), loss = mean squared error + ``l1 * mean_batch(sum |f|)``. A ``topk`` variant
keeps the k largest pre-activations instead of an L1 penalty (Gao et al. 2024,
https://arxiv.org/abs/2406.04093). Inputs are normalised with a stored mean and one scalar
scale (so that E||x||^2 = d), and dead latents (no firing in a window) are resampled from
badly reconstructed inputs, as in the paper.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from anytask.core.errors import AnytaskError


@dataclass(frozen=True)
class SAEConfig:
    dim: int
    expansion: int = 4
    kind: str = "relu"  # "relu" (L1 penalty) or "topk"
    l1: float = 3e-4
    k: int = 32
    lr: float = 5e-4
    batch_size: int = 1024
    epochs: int = 30
    resample_every: int = 5  # epochs; never in the last resample_every epochs
    seed: int = 0
    backbone: str = ""  # identity of the backbone whose embeddings it was trained on

    @property
    def n_latents(self) -> int:
        return self.dim * self.expansion


class SparseAutoencoder(nn.Module):
    def __init__(self, config: SAEConfig) -> None:
        super().__init__()
        if config.kind not in ("relu", "topk"):
            raise AnytaskError(f"unknown SAE kind {config.kind!r}; use 'relu' or 'topk'")
        self.config = config
        d, h = config.dim, config.n_latents
        g = torch.Generator().manual_seed(config.seed)
        self.b = nn.Parameter(torch.zeros(d))
        self.W_e = nn.Parameter(torch.empty(h, d))
        self.b_e = nn.Parameter(torch.zeros(h))
        bound = math.sqrt(6 / d)  # kaiming-uniform, as the released code
        with torch.no_grad():
            self.W_e.uniform_(-bound, bound, generator=g)
        self.W_d = nn.Parameter(self.W_e.detach().T.clone())  # (d, h)
        self.normalize_decoder()
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("act_scale", torch.ones(h))  # per-latent std on the training pool

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_d.div_(self.W_d.norm(dim=0, keepdim=True).clamp_min(1e-8))

    def normalize_input(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.scale

    def pre_activations(self, xn: Tensor) -> Tensor:
        return (xn - self.b) @ self.W_e.T + self.b_e  # (N, h)

    def encode_normalized(self, xn: Tensor) -> Tensor:
        z = self.pre_activations(xn)
        if self.config.kind == "topk":
            top = z.topk(self.config.k, dim=-1)
            return torch.zeros_like(z).scatter_(-1, top.indices, top.values.relu())
        return z.relu()

    def encode(self, x: Tensor) -> Tensor:
        """Concept activations ``(N, h)`` of raw (unnormalised) embeddings ``(N, d)``."""
        if x.shape[-1] != self.config.dim:
            raise AnytaskError(f"this sparse autoencoder takes {self.config.dim}-d embeddings "
                               f"(backbone {self.config.backbone or 'unknown'}), got {x.shape[-1]}-d")
        return self.encode_normalized(self.normalize_input(x))

    def decode_normalized(self, f: Tensor) -> Tensor:
        return f @ self.W_d.T + self.b

    def forward(self, xn: Tensor) -> tuple[Tensor, Tensor]:
        f = self.encode_normalized(xn)
        return self.decode_normalized(f), f

    @property
    def directions(self) -> Tensor:
        """Unit concept directions ``(h, d)`` in the normalised input space."""
        return self.W_d.T


def _check_pool(X: np.ndarray) -> Tensor:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise AnytaskError(f"the SAE trains on an (N, d) matrix of embeddings, got shape {X.shape}")
    if not np.isfinite(X).all():
        row = int(np.argwhere(~np.isfinite(X))[0][0])
        raise AnytaskError(f"the embedding pool contains NaN or inf (first at row {row}); remove those rows")
    return torch.from_numpy(X)


def train_sae(X: np.ndarray, config: SAEConfig, *, progress: bool = True, log=None) -> tuple[SparseAutoencoder, list]:
    """Train on an (N, d) pool of embeddings with an explicit loop; returns the model and a log."""
    X = _check_pool(X)
    if X.shape[1] != config.dim:
        raise AnytaskError(f"config.dim is {config.dim} but the pool is {X.shape[1]}-d")
    torch.manual_seed(config.seed)
    sae = SparseAutoencoder(config)
    with torch.no_grad():
        sae.mean.copy_(X.mean(0))
        sae.scale.copy_(((X - sae.mean).pow(2).sum(1).mean() / config.dim).sqrt())
        Xn = sae.normalize_input(X)
        sae.b.copy_(Xn.median(0).values)  # geometric-median-like start for the tied bias
    opt = torch.optim.Adam(sae.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    n, steps_per_epoch = len(Xn), max(1, math.ceil(len(Xn) / config.batch_size))
    fired = torch.zeros(config.n_latents, dtype=torch.long)
    bar = tqdm(range(config.epochs), desc=f"SAE x{config.expansion} {config.kind}", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        totals = {"mse": 0.0, "l1": 0.0, "l0": 0.0}
        for step in range(steps_per_epoch):
            xb = Xn[perm[step * config.batch_size : (step + 1) * config.batch_size]]
            x_hat, f = sae(xb)
            mse = (x_hat - xb).pow(2).mean()
            l1 = f.abs().sum(-1).mean()
            loss = mse + (config.l1 * l1 if config.kind == "relu" else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalize_decoder()
            fired += (f > 0).sum(0)
            totals["mse"] += mse.item() / steps_per_epoch
            totals["l1"] += l1.item() / steps_per_epoch
            totals["l0"] += (f > 0).float().sum(-1).mean().item() / steps_per_epoch
        resampled = 0
        last_window = epoch >= config.epochs - config.resample_every
        if (epoch + 1) % config.resample_every == 0 and not last_window:
            dead = (fired == 0).nonzero().flatten()
            resampled = _resample(sae, opt, Xn, dead, gen)
            fired.zero_()
        entry = {"epoch": epoch + 1, **{k: round(v, 6) for k, v in totals.items()}, "resampled": resampled,
                 "seconds": round(time.perf_counter() - start, 2)}
        history.append(entry)
        bar.set_postfix(mse=f"{totals['mse']:.4f}", l0=f"{totals['l0']:.1f}")
        if log:
            log(entry)
    with torch.no_grad():
        F = torch.cat([sae.encode_normalized(Xn[i : i + 8192]) for i in range(0, n, 8192)])
        sae.act_scale.copy_(F.std(0).clamp_min(1e-6))
    return sae, history


@torch.no_grad()
def _resample(sae: SparseAutoencoder, opt, Xn: Tensor, dead: Tensor, gen) -> int:
    """Re-initialise dead latents towards inputs the model reconstructs worst (p ~ loss^2)."""
    if len(dead) == 0:
        return 0
    sample = Xn[torch.randperm(len(Xn), generator=gen)[: min(len(Xn), 16384)]]
    x_hat, _ = sae(sample)
    loss = (x_hat - sample).pow(2).sum(-1)
    probs = loss.pow(2) / loss.pow(2).sum()
    picks = torch.multinomial(probs, len(dead), replacement=len(dead) > len(sample), generator=gen)
    directions = sample[picks] - sae.b
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    alive = torch.ones(sae.config.n_latents, dtype=torch.bool)
    alive[dead] = False
    enc_norm = sae.W_e[alive].norm(dim=-1).mean() if alive.any() else torch.tensor(1.0)
    sae.W_d[:, dead] = directions.T
    sae.W_e[dead] = directions * 0.2 * enc_norm
    sae.b_e[dead] = 0.0
    for param in (sae.W_e, sae.W_d, sae.b_e):  # reset Adam's moments for what was re-initialised
        state = opt.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                if param is sae.W_d:
                    state[key][:, dead] = 0
                else:
                    state[key][dead] = 0
    return int(len(dead))


@torch.no_grad()
def evaluate_sae(sae: SparseAutoencoder, X: np.ndarray) -> dict:
    """Explained variance, mean active latents (L0) and the share of latents that never fire."""
    X = _check_pool(X)
    Xn = sae.normalize_input(X)
    sse, l0, fired = 0.0, 0.0, torch.zeros(sae.config.n_latents, dtype=torch.bool)
    for i in range(0, len(Xn), 8192):
        x_hat, f = sae(Xn[i : i + 8192])
        sse += (x_hat - Xn[i : i + 8192]).pow(2).sum().item()
        l0 += (f > 0).sum().item()
        fired |= (f > 0).any(0)
    total = (Xn - Xn.mean(0)).pow(2).sum().item()
    return {"explained_variance": round(1 - sse / total, 4), "l0": round(l0 / len(Xn), 2),
            "dead_fraction": round(1 - fired.float().mean().item(), 4), "n_latents": sae.config.n_latents,
            "n_eval": len(Xn)}


def sae_state(sae: SparseAutoencoder) -> tuple[dict, dict[str, Tensor]]:
    return {"sae_config": asdict(sae.config)}, {k: v.detach().clone() for k, v in sae.state_dict().items()}


def sae_from_state(extra: dict, tensors: dict[str, Tensor]) -> SparseAutoencoder:
    try:
        sae = SparseAutoencoder(SAEConfig(**extra["sae_config"]))
        sae.load_state_dict(tensors)
    except (KeyError, TypeError, RuntimeError) as e:
        raise AnytaskError(f"corrupted or incompatible sparse autoencoder: {e}") from e
    return sae
