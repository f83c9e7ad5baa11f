"""Sharpness-aware optimisers: SAM, ASAM and TRAM, as one wrapper around any base optimiser.

* SAM (Foret et al. 2021, https://arxiv.org/abs/2010.01412): step to the worst point of an
  L2 ball of radius ``rho`` around the weights, ``eps = rho g / ||g||``, take the gradient
  there, come back and let the base optimiser apply it.
* ASAM (Kwon et al. 2021, https://arxiv.org/abs/2102.11600): the ball is scaled per weight
  by ``|theta|``, ``eps = rho theta^2 g / ||theta g||``.
* TRAM (Sherborne et al. 2024, https://arxiv.org/abs/2310.03646, card 14): ASAM whose radius
  is, at every step, a trust-region distance ``d`` = KL(reference outputs || current outputs)
  on the batch, with the reference the previous step's model (``previous``), the
  pre-trained model (``initial``) or the current model on noised inputs (``noise``). The
  neighbourhood shrinks when the function is already moving fast; there is no ``rho``.

Usage in any training loop (two passes per step)::

    opt = SharpnessAware(params, torch.optim.AdamW, mode="tram", lr=2e-5)
    loss_fn().backward()
    opt.first_step(radius=opt.radius(d))    # d: the trust-region distance (TRAM only)
    opt.zero_grad(); loss_fn().backward()   # the gradient at the perturbed weights
    opt.second_step()                       # restore the weights, base optimiser step

``kl_divergence`` computes ``d`` from the two sets of logits. The parameters are restored
bit for bit before the base step; with ``d = 0`` TRAM is the base optimiser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", family="finetune")
MODES = ("sam", "asam", "tram")


def kl_divergence(target_logits: Tensor, logits: Tensor) -> Tensor:
    """Batch-mean KL(p_target || p): the trust-region distance (forward KL, target first)."""
    return F.kl_div(F.log_softmax(logits, -1), F.log_softmax(target_logits, -1), log_target=True,
                    reduction="batchmean")


class SharpnessAware(torch.optim.Optimizer):
    """Wraps ``base_optimizer(params, **kwargs)``; ``mode`` is ``sam``, ``asam`` or ``tram``."""

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer] = torch.optim.AdamW, *,
                 mode: str = "sam", rho: float | None = None, **kwargs) -> None:
        if mode not in MODES:
            raise AnytaskError(f"unknown sharpness-aware mode {mode!r}; use one of {', '.join(MODES)}")
        if rho is None:
            rho = {"sam": 0.05, "asam": 0.5, "tram": 0.0}[mode]  # the papers' defaults; TRAM uses d instead
        if not rho >= 0:
            raise AnytaskError(f"rho must be >= 0, got {rho!r}")
        self.mode, self.rho = mode, float(rho)
        super().__init__(params, dict(rho=float(rho)))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups  # one set of groups: schedulers see the base lr
        self.defaults.update(self.base_optimizer.defaults)

    def radius(self, distance: Tensor | float | None = None) -> float:
        """The ball's radius this step: ``rho`` for SAM/ASAM, the trust-region distance for TRAM."""
        if self.mode != "tram":
            return self.rho
        if distance is None:
            raise AnytaskError("TRAM needs the trust-region distance each step: first_step(radius=opt.radius(d))")
        d = float(distance)
        if not d >= 0:  # NaN or negative: a broken distance would silently derail training
            raise AnytaskError(f"trust-region distance must be a finite number >= 0, got {d!r}")
        return d

    @torch.no_grad()
    def first_step(self, radius: float | None = None) -> None:
        """Move to ``theta + eps`` (the gradients of the first pass must be in ``.grad``)."""
        radius = self.rho if radius is None else float(radius)
        adaptive = self.mode in ("asam", "tram")
        scaled = [(p.abs() * p.grad if adaptive else p.grad) for g in self.param_groups for p in g["params"]
                  if p.grad is not None]
        norm = torch.norm(torch.stack([s.norm(2) for s in scaled])) if scaled else torch.zeros(())
        scale = radius / (float(norm) + 1e-12)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                eps = (p * p if adaptive else 1.0) * p.grad * scale
                self.state[p]["theta"] = p.detach().clone()
                p.add_(eps)

    @torch.no_grad()
    def second_step(self) -> None:
        """Restore the weights exactly, then the base optimiser steps with the gradient taken at ``theta + eps``."""
        for group in self.param_groups:
            for p in group["params"]:
                if "theta" in self.state[p]:
                    p.copy_(self.state[p].pop("theta"))
        self.base_optimizer.step()

    def step(self, closure=None):  # noqa: D401 - torch API
        raise AnytaskError("a sharpness-aware optimiser takes two passes: call first_step(), recompute the loss "
                           "and its gradient, then second_step()")

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none)


def _factory(mode: str):
    def build(params, base_optimizer: type[torch.optim.Optimizer] = torch.optim.AdamW, **kwargs) -> SharpnessAware:
        return SharpnessAware(params, base_optimizer, mode=mode, **kwargs)

    build.__name__ = build.__qualname__ = mode
    build.__doc__ = f"A {mode.upper()} optimiser around ``base_optimizer`` (see SharpnessAware)."
    return build


for _mode, _ref, _summary in (
        ("sam", "Foret et al. 2021, https://arxiv.org/abs/2010.01412", "ascend to the worst point of an L2 ball of "
         "radius rho, descend with the gradient there"),
        ("asam", "Kwon et al. 2021, https://arxiv.org/abs/2102.11600", "SAM with the ball scaled per weight by its magnitude "
         "(scale-invariant sharpness)"),
        ("tram", "Sherborne et al. 2024, https://arxiv.org/abs/2310.03646", "ASAM whose radius is a trust-region "
         "KL distance to the previous / pre-trained model or to noised inputs")):
    OPTIMIZERS.register(_mode, reference=_ref, summary=_summary, input="weights", output="weights")(_factory(_mode))
