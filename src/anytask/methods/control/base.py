"""Control: state representations trained once on an environment's offline data and reused frozen
(``ENCODERS``), and the learners that act on them (``LEARNERS``), over Gymnasium's API.

An encoder is a scikit-learn estimator over transitions (``anytask.data.envs.Transitions``, or an environment id,
whose data it collects with a uniform random policy)::

    enc = ENCODERS.get("pvn")(n_tasks=32, steps=20_000).fit("MinAtar/Breakout-v1")
    X = enc.embed(obs)                         # (N, width) frozen features, for any feature head
    enc.save_pretrained("breakout-pvn")        # config.json + model.safetensors
    agent = LEARNERS.get("linear_q")(encoder=enc, steps=100_000).fit("MinAtar/Breakout-v1")

Every encoder shares the torso below (``Torso``: two 3x3 convolutions and a dense ReLU layer for image planes
``(H, W, C)``; a two-layer ReLU MLP for vector states) and the bookkeeping (observation shape check, saving,
checkpoints to resume long training); a method supplies ``_train(data, bar)``.
"""

from __future__ import annotations

import io as _io
import logging
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained, write_file_atomic
from anytask.core.registry import Registry

ENCODERS: Registry = Registry("state encoder", family="control")
LEARNERS: Registry = Registry("control learner", family="control")
log = logging.getLogger("anytask.control")
CHECKPOINT = "checkpoint.pt"


def obs_tensor(obs) -> torch.Tensor:
    """A batch of observations as float32: image planes ``(N, H, W, C)`` become ``(N, C, H, W)``."""
    x = torch.as_tensor(np.asarray(obs))
    x = x.float()
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class Torso(nn.Module):
    """Observation -> ``width`` ReLU features. Image planes ``(H, W, C)``: Conv(C, 16, 3) ReLU, Linear(16 (H-2)
    (W-2), width) ReLU (the MinAtar DQN's network, Young & Tian 2019); vector states ``(D,)``: Linear(D, 256) ReLU,
    Linear(256, width) ReLU."""

    def __init__(self, obs_shape: tuple[int, ...], width: int):
        super().__init__()
        self.obs_shape = tuple(int(s) for s in obs_shape)
        if len(self.obs_shape) == 3:
            h, w, c = self.obs_shape
            if h < 3 or w < 3:
                raise AnytaskError(f"image observations must be at least 3x3 for the conv torso, got {obs_shape}")
            self.net = nn.Sequential(nn.Conv2d(c, 16, 3), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(16 * (h - 2) * (w - 2), width), nn.ReLU())
        elif len(self.obs_shape) == 1:
            self.net = nn.Sequential(nn.Linear(self.obs_shape[0], 256), nn.ReLU(), nn.Linear(256, width), nn.ReLU())
        else:
            raise AnytaskError(f"observations of shape {obs_shape} are not supported: use image planes (H, W, C) "
                               f"or vector states (D,)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def check_obs(obs, expected: tuple[int, ...], what: str) -> np.ndarray:
    """``obs`` as a batch ``(N, *expected)`` (one observation becomes a batch of one), or a clear error."""
    obs = np.asarray(obs)
    if obs.shape == tuple(expected):
        obs = obs[None]
    if obs.shape[1:] != tuple(expected):
        raise AnytaskError(f"{what} was trained on observations of shape {tuple(expected)}; got "
                           f"{obs.shape[1:] if obs.ndim > 1 else obs.shape} (use an encoder trained on this "
                           "environment)")
    if obs.dtype.kind == "f" and not np.isfinite(obs).all():
        raise AnytaskError("observations contain NaN or inf")
    return obs


def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target``, parameter by parameter (the card's EMA target)."""
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.mul_(1 - tau).add_(o, alpha=tau)


def save_checkpoint(folder: str | Path, state: dict) -> None:
    """Write ``state`` (tensors, optimiser states, numbers) to ``folder/checkpoint.pt`` atomically."""
    buf = _io.BytesIO()
    torch.save(state, buf)
    write_file_atomic(Path(folder) / CHECKPOINT, buf.getvalue())


def load_checkpoint(folder: str | Path | None, fingerprint: dict) -> dict | None:
    """The checkpoint in ``folder`` when it was written by a run with the same ``fingerprint`` (parameters and
    data); None when there is none. A checkpoint of another run is an error, never silently resumed."""
    if folder is None or not (Path(folder) / CHECKPOINT).is_file():
        return None
    try:
        state = torch.load(Path(folder) / CHECKPOINT, weights_only=True)
    except Exception as e:
        raise AnytaskError(f"the checkpoint in {folder} cannot be read ({type(e).__name__}); delete it to start "
                           "over") from e
    if state.get("fingerprint") != fingerprint:
        raise AnytaskError(f"the checkpoint in {folder} was written by a run with other parameters or data "
                           f"({state.get('fingerprint')}); use another checkpoint_dir or delete it")
    return state


class StateEncoder(BaseEstimator, Pretrained):
    """The shared estimator: data, training loop with progress and checkpoints, embedding, save / load.
    Subclasses set ``_modules()`` (what is saved beside the torso) and ``_train(data, start, bar)``."""

    def _check_params(self) -> None:
        for name in ("width", "steps", "batch_size", "n_transitions"):
            v = getattr(self, name, 1)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise AnytaskError(f"{name}={v!r}: must be a positive integer")

    def _data(self, data):
        from anytask.data.envs import Transitions, collect

        if isinstance(data, str):
            data = collect(data, int(self.n_transitions), seed=int(self.seed), progress=self.progress)
        if not isinstance(data, Transitions):
            raise AnytaskError(f"fit takes an environment id or anytask.data.envs.Transitions, not "
                               f"{type(data).__name__}")
        if len(data) < 2:
            raise AnytaskError("fit needs at least two transitions")
        return data

    def fit(self, data, y=None):
        """Train on ``data`` (Transitions, or an environment id: random-policy data is collected); ``y`` is
        ignored (the representation is task-agnostic: no reward is used unless the method says so)."""
        self._check_params()
        data = self._data(data)
        torch.manual_seed(int(self.seed))
        self.env_id_, self.obs_shape_ = data.env_id, data.obs_shape
        self.n_actions_ = int(data.n_actions)
        self.torso_ = Torso(self.obs_shape_, int(self.width))
        self._build(data)
        self.history_ = []
        self._train(data)
        self.torso_.eval()
        for p in self.torso_.parameters():
            p.requires_grad_(False)
        return self

    def _build(self, data) -> None:
        """Create what the method trains beside the torso."""

    def _train(self, data) -> None:
        raise NotImplementedError

    def _run(self, data, step_fn, state: dict, steps: int, gen: torch.Generator, desc: str) -> None:
        """Call ``step_fn(step) -> {name: float}`` for ``steps`` steps with a progress bar, a history row every
        ``steps // 100`` steps, and a checkpoint of ``state`` (objects with ``state_dict``) and ``gen`` every
        ``checkpoint_every`` steps in ``checkpoint_dir``; a run with a checkpoint there resumes from it."""
        from tqdm.auto import tqdm

        fingerprint = self._fingerprint(data)
        start = 0
        ck = load_checkpoint(self.checkpoint_dir, fingerprint)
        if ck is not None:
            for k, obj in state.items():
                obj.load_state_dict(ck["state"][k])
            gen.set_state(ck["gen"])
            start, self.history_ = int(ck["step"]), list(ck["history"])
            log.info("resuming %s from step %d of %d (%s)", type(self).__name__, start, steps, self.checkpoint_dir)
        every = max(1, steps // 100)
        bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, disable=not self.progress,
                   leave=False)
        for step in bar:
            logs = step_fn(step)
            if step % every == 0 or step == steps - 1:
                self.history_.append({"step": step, **logs})
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
            if self.checkpoint_dir is not None and ((step + 1) % int(self.checkpoint_every) == 0 or
                                                    step == steps - 1):
                save_checkpoint(self.checkpoint_dir, {
                    "fingerprint": fingerprint, "step": step + 1, "history": self.history_, "gen": gen.get_state(),
                    "state": {k: obj.state_dict() for k, obj in state.items()}})

    def _fingerprint(self, data) -> dict:
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("progress", "checkpoint_dir")}
        return {"class": type(self).__name__, "params": {k: repr(v) for k, v in params.items()},
                "env_id": data.env_id, "n": len(data), "obs_sum": int(np.asarray(data.obs[:1000]).sum())}

    # -- use ----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen features of a float batch already in torso layout (what learners call every step)."""
        return self.torso_(x)

    def embed(self, obs, batch_size: int = 4096) -> np.ndarray:
        """``(N, width)`` features of observations ``(N, *obs_shape)`` (or one observation)."""
        check_is_fitted(self, "torso_")
        obs = check_obs(obs, self.obs_shape_, f"this {type(self).__name__}")
        out = [self.features(obs_tensor(obs[i:i + batch_size])) for i in range(0, len(obs), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, int(self.width)), np.float32)

    def transform(self, obs) -> np.ndarray:
        return self.embed(obs)

    @property
    def dim(self) -> int:
        return int(self.width)

    # -- save / load --------------------------------------------------------------------------------------------
    def _modules(self) -> dict[str, nn.Module]:
        return {}

    def _get_state(self):
        check_is_fitted(self, "torso_")
        tensors = {f"torso.{k}": v for k, v in self.torso_.state_dict().items()}
        for name, m in self._modules().items():
            tensors.update({f"{name}.{k}": v for k, v in m.state_dict().items()})
        extra = {"env_id": self.env_id_, "obs_shape": list(self.obs_shape_), "n_actions": int(self.n_actions_),
                 "final": self.history_[-1] if self.history_ else {}}
        return extra, tensors

    @classmethod
    def _from_state(cls, params, extra, tensors):
        enc = cls(**params)
        enc.env_id_, enc.obs_shape_ = extra["env_id"], tuple(extra["obs_shape"])
        enc.n_actions_ = int(extra["n_actions"])
        enc.torso_ = Torso(enc.obs_shape_, int(enc.width))
        enc.torso_.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("torso.")})
        enc._build_from_saved(extra)
        for name, m in enc._modules().items():
            m.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")})
        enc.torso_.eval()
        for p in enc.torso_.parameters():
            p.requires_grad_(False)
        enc.history_ = [extra.get("final", {})]
        return enc

    def _build_from_saved(self, extra) -> None:
        """Recreate the modules ``_modules`` names (before their tensors are loaded)."""

    def _card_fields(self) -> dict:
        return {"input": f"observations {tuple(self.obs_shape_)} of {self.env_id_}",
                "output": f"{self.width} frozen features per observation (embed)"}


def adam(params, lr: float, eps: float = 1.5e-4) -> torch.optim.Adam:
    """Adam, fused where PyTorch has the CPU kernel (4-5x faster steps for these small networks)."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, eps=eps)


def adam_lr(batch_size: int, base: float = 6.25e-5) -> float:
    """The official PVN code's learning rate, ``6.25e-5 * (batch / 32) ** 0.25``."""
    return base * math.pow(batch_size / 32, 0.25)
