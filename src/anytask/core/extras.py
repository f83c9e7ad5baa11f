"""Optional dependencies: the base install is the library alone; the service, plots, causal LMs,
retrieval, graphs, Ray and the peer baselines come with extras (``pip install 'anytask[serve]'``)."""

from __future__ import annotations

import importlib
import importlib.util

from anytask.core.errors import AnytaskError


def has(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def downloads_allowed() -> bool:
    """Whether the user let anytask download from the Hugging Face hub: ``HF_HUB_OFFLINE=0`` or
    ``ANYTASK_ALLOW_DOWNLOAD=1``. Off by default: hub names are read from the local cache only."""
    import os

    return os.environ.get("HF_HUB_OFFLINE") == "0" or os.environ.get("ANYTASK_ALLOW_DOWNLOAD") == "1"


DOWNLOAD_HINT = "set HF_HUB_OFFLINE=0 (or ANYTASK_ALLOW_DOWNLOAD=1) to let anytask download it"


def require(module: str, extra: str, what: str):
    """``import module``, or an AnytaskError naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise AnytaskError(f"{what} needs the package {module.split('.')[0]!r}, which is not installed: "
                           f"pip install 'anytask[{extra}]'") from e
