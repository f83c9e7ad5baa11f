"""Task vectors and merge methods: typed functions over one tensor (or a state dict) at a time.

A task vector is ``tau_t = theta_t - theta_0`` (Ilharco et al. 2023, task arithmetic,
https://arxiv.org/abs/2212.04089): adding ``lambda * sum_t w_t tau_t`` to the base composes
tasks, a negative weight forgets one. TIES (Yadav et al. 2023, https://arxiv.org/abs/2306.01708)
and DARE (Yu et al. 2024, https://arxiv.org/abs/2311.03099) differ from it in two independent
choices, so one generalised function covers all of them:

* **sparsify** each task vector: ``none``, ``magnitude`` (keep the top ``density`` fraction by
  absolute value: TIES's trim) or ``random`` (keep each entry with probability ``density`` and
  rescale the kept ones by ``1 / density``: DARE's drop-and-rescale);
* **consensus** across tasks: ``none`` (weighted sum) or ``sign`` (elect the sign of the
  weighted sum of each entry and average only the entries that agree with it: TIES's
  disjoint merge).

``task_arithmetic = (none, none)``, ``ties = (magnitude, sign)``, ``dare_linear = (random,
none)``, ``dare_ties = (random, sign)``. Every function works on one parameter tensor, so a
merge can stream a checkpoint tensor by tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

MERGES: Registry = Registry("merge method", family="merging")
SPARSIFY = ("none", "magnitude", "random")
CONSENSUS = ("none", "sign")


def task_vector(base: Mapping[str, Tensor], tuned: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``tuned - base`` for every floating-point tensor (keys and shapes must match)."""
    check_compatible(base, [tuned])
    return {k: tuned[k] - base[k] for k in base if base[k].is_floating_point()}


def check_compatible(base: Mapping[str, Tensor], models: Sequence[Mapping[str, Tensor]], names=None) -> None:
    """Same keys, shapes and dtypes as the base, and finite values, or an error naming the first problem."""
    names = names or [f"model {i}" for i in range(len(models))]
    for name, model in zip(names, models):
        check_keys(base, model, name)
        for key in base:
            check_tensor_pair(key, base[key], model[key], name)


def check_keys(base_keys, keys, name: str) -> None:
    missing, extra = sorted(set(base_keys) - set(keys)), sorted(set(keys) - set(base_keys))
    if missing or extra:
        raise AnytaskError(f"{name} does not have the base's architecture: missing keys {missing[:3]}, "
                           f"unexpected keys {extra[:3]}")


def method_spec(method: str, params: Mapping | None = None) -> dict:
    """The merge recipe a registered method builds from its parameters, or a clear error."""
    build = MERGES.get(method)
    if MERGES.caps(method).learned:
        raise AnytaskError(f"{method!r} learns its coefficients from labelled examples, so a config file cannot "
                           "set them: use anytask.methods.merging.atlas.fit_atlas")
    try:
        return build(**(params or {}))
    except TypeError:
        import inspect

        valid = ", ".join(inspect.signature(build).parameters) or "none"
        raise AnytaskError(f"bad parameters {sorted(params or {})} for merge method {method!r}; "
                           f"valid parameters: {valid}") from None


def check_tensor_pair(key: str, base: Tensor, other: Tensor, name: str) -> None:
    if other.shape != base.shape:
        raise AnytaskError(f"{name}: tensor {key!r} has shape {tuple(other.shape)}, the base has "
                           f"{tuple(base.shape)}; models with different architectures cannot be merged")
    if other.dtype != base.dtype:
        raise AnytaskError(f"{name}: tensor {key!r} is {other.dtype}, the base is {base.dtype}; convert the "
                           "checkpoints to one dtype first")
    if other.is_floating_point() and not torch.isfinite(other).all():
        raise AnytaskError(f"{name}: tensor {key!r} contains NaN or inf; the checkpoint is broken")


def sparsify(tau: Tensor, method: str, density: float, generator: torch.Generator | None = None) -> Tensor:
    if method not in SPARSIFY:
        raise AnytaskError(f"unknown sparsify {method!r}; use one of {', '.join(SPARSIFY)}")
    if method == "none" or density >= 1.0:
        return tau
    if not 0.0 < density <= 1.0:
        raise AnytaskError(f"density must be in (0, 1], got {density}")
    if method == "magnitude":
        # exactly k = floor(density * n) entries, as PEFT and mergekit count; equal magnitudes at the
        # threshold (common: fine-tuning deltas are quantised by the weights' precision) are broken
        # by torch.topk, as PEFT does, so the two agree tensor for tensor
        k = max(1, int(density * tau.numel()))
        keep = torch.zeros(tau.numel(), dtype=torch.bool)
        keep[torch.topk(tau.abs().flatten(), k, largest=True).indices] = True
        return torch.where(keep.view(tau.shape), tau, torch.zeros_like(tau))
    keep = torch.rand(tau.shape, generator=generator) < density
    return torch.where(keep, tau / density, torch.zeros_like(tau))


def combine(taus: Sequence[Tensor], weights: Sequence[float], consensus: str) -> Tensor:
    if consensus not in CONSENSUS:
        raise AnytaskError(f"unknown consensus {consensus!r}; use one of {', '.join(CONSENSUS)}")
    weighted = torch.stack([w * t for w, t in zip(weights, taus)])  # (T, ...)
    if consensus == "none":
        return weighted.sum(0)
    sign = torch.sign(weighted.sum(0))  # elected sign: the sign of the total mass
    agree = (torch.sign(weighted) == sign) & (weighted != 0)
    count = agree.sum(0).clamp_min(1)
    return (weighted * agree).sum(0) / count


def merge_tensor(base: Tensor, tuned: Sequence[Tensor], weights: Sequence[float], *, scale: float = 1.0,
                 sparsify_method: str = "none", density: float = 1.0, consensus: str = "none",
                 generator: torch.Generator | None = None) -> Tensor:
    """``base + scale * combine(sparsify(tuned_t - base))`` for one tensor (integers pass through)."""
    if not base.is_floating_point():
        return base
    if consensus == "none":  # a running sum: no stack of T task vectors in memory
        out = base.float().clone()
        for w, t in zip(weights, tuned):
            out.add_(sparsify((t - base).float(), sparsify_method, density, generator), alpha=scale * w)
        return out.to(base.dtype)
    taus = [sparsify((t - base).float(), sparsify_method, density, generator) for t in tuned]
    return (base.float() + scale * combine(taus, weights, consensus)).to(base.dtype)


def merge_state_dicts(base: Mapping[str, Tensor], tuned: Sequence[Mapping[str, Tensor]], weights=None, *,
                      method: str = "task_arithmetic", seed: int = 0, **params) -> dict[str, Tensor]:
    """Merge whole state dicts held in memory (``anytask.methods.merging.merge_folders`` streams instead)."""
    if not tuned:
        raise AnytaskError("no models to merge: pass at least one fine-tuned state dict")
    weights = list(weights) if weights is not None else [1.0] * len(tuned)
    check_compatible(base, tuned)
    spec = method_spec(method, params)
    gen = torch.Generator().manual_seed(seed)
    return {k: merge_tensor(base[k], [t[k] for t in tuned], weights, generator=gen, **spec) for k in base}


def _scale(value: float) -> float:
    if not isinstance(value, (int, float)) or value != value or abs(value) > 10:
        raise AnytaskError(f"lambda (scale) must be a finite number in [-10, 10], got {value!r}")
    return float(value)


def _density(value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise AnytaskError(f"density must be in (0, 1], got {value!r}")
    return float(value)


@MERGES.register("task_arithmetic", reference="Ilharco et al. 2023, https://arxiv.org/abs/2212.04089",
                 summary="base + lambda * sum of weighted task vectors (negative weight: negation)",
                 input="weights", output="weights")
def task_arithmetic(*, scale: float = 1.0) -> dict:
    return {"scale": _scale(scale), "sparsify_method": "none", "density": 1.0, "consensus": "none"}


@MERGES.register("ties", reference="Yadav et al. 2023, https://arxiv.org/abs/2306.01708",
                 summary="trim to the top-density magnitudes, elect signs, average agreeing entries",
                 input="weights", output="weights")
def ties(*, scale: float = 1.0, density: float = 0.2) -> dict:
    return {"scale": _scale(scale), "sparsify_method": "magnitude", "density": _density(density),
            "consensus": "sign"}


@MERGES.register("dare_linear", reference="Yu et al. 2024, https://arxiv.org/abs/2311.03099",
                 summary="drop entries at random (keep density), rescale by 1/density, add", input="weights",
                 output="weights")
def dare_linear(*, scale: float = 1.0, density: float = 0.5) -> dict:
    return {"scale": _scale(scale), "sparsify_method": "random", "density": _density(density), "consensus": "none"}


@MERGES.register("dare_ties", reference="Yu et al. 2024, https://arxiv.org/abs/2311.03099",
                 summary="DARE's drop-and-rescale, then TIES's sign election", input="weights", output="weights")
def dare_ties(*, scale: float = 1.0, density: float = 0.5) -> dict:
    return {"scale": _scale(scale), "sparsify_method": "random", "density": _density(density), "consensus": "sign"}


@MERGES.register("generalized", reference="TIES and DARE as sparsify x consensus (this module's docstring)",
                 summary="any sparsify (none, magnitude, random) x consensus (none, sign)", input="weights",
                 output="weights")
def generalized(*, scale: float = 1.0, sparsify: str = "none", density: float = 1.0, consensus: str = "none") -> dict:
    if sparsify not in SPARSIFY or consensus not in CONSENSUS:
        raise AnytaskError(f"sparsify must be one of {SPARSIFY} and consensus one of {CONSENSUS}")
    return {"scale": _scale(scale), "sparsify_method": sparsify, "density": _density(density), "consensus": consensus}


def disentanglement_error(predict, alphas: Sequence[float], task_data: Sequence) -> float:
    """Weight disentanglement error (Ortiz-Jimenez et al. 2023, https://arxiv.org/abs/2305.12827):
    ``xi = sum_t E_{x in D_t} [ predict(x; base + sum_s alpha_s tau_s) != predict(x; base + alpha_t tau_t) ]``.

    ``predict(alphas, X)`` returns labels for inputs ``X`` from the model ``base + sum_s alphas[s] tau_s``;
    ``task_data[t]`` holds task t's inputs."""
    total = 0.0
    for t, X in enumerate(task_data):
        only_t = [a if s == t else 0.0 for s, a in enumerate(alphas)]
        together, alone = predict(list(alphas), X), predict(only_t, X)
        total += float((torch.as_tensor(together) != torch.as_tensor(alone)).float().mean())
    return total
