"""Where models run: ``device="auto" | "cpu" | "cuda" | "cuda:N" | "mps"``.

``auto`` is ``$ANYTASK_DEVICE`` when set, else the first CUDA GPU when one is visible, else Apple's
MPS, else the CPU. An explicit device that is not there is an error that says what is, never a
silent fall-back to the CPU. Embeddings do not depend on the device beyond float rounding (a
GPU-marked test checks 1e-4), so the embedding cache is shared across devices.
"""

from __future__ import annotations

import os

from anytask.core.errors import AnytaskError

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str | None = "auto") -> str:
    """The concrete torch device string (``"cpu"``, ``"cuda:0"``, ``"mps"``) that ``spec`` names."""
    import torch

    spec = "auto" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        spec = os.environ.get("ANYTASK_DEVICE", "").strip().lower() or "auto"
        if spec == "auto":
            if torch.cuda.is_available():
                return "cuda:0"
            mps = getattr(torch.backends, "mps", None)
            return "mps" if mps is not None and mps.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise AnytaskError(f"device 'mps' is not available here (it needs Apple silicon); use {available()}")
        return "mps"
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec[5:] or "0"
        if not index.isdigit():
            raise AnytaskError(f"bad device {spec!r}; use {DEVICES}")
        if not torch.cuda.is_available():
            raise AnytaskError(f"device {spec!r} asked for, but no CUDA GPU is visible (torch "
                               f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use {available()}")
        if int(index) >= torch.cuda.device_count():
            raise AnytaskError(f"device {spec!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are "
                               f"visible; use {available()}")
        return f"cuda:{index}"
    raise AnytaskError(f"unknown device {spec!r}; use {DEVICES}")


def available() -> str:
    """The devices this machine has, for error messages."""
    import torch

    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return ", ".join(found) + " (or auto)"


def default_batch_size(device: str) -> int:
    """Texts per forward pass: 32 on the CPU (more only adds padding), 128 on an accelerator (halved on
    out-of-memory by ``Backbone.embed``)."""
    return 32 if device == "cpu" else 128
