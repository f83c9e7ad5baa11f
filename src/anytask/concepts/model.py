"""ConceptModel: a trained SAE with its concept names, saved and found like any weights.

Resolution of a name (e.g. ``minilm``): an existing folder path, then
``$ANYTASK_HOME/concepts/<name>``, then the weights shipped in this package
(``anytask/concepts/weights/<name>``); the error lists every path it looked at.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from anytask.concepts.sae import SparseAutoencoder, sae_from_state, sae_state
from anytask.errors import AnytaskError

SHIPPED = Path(__file__).resolve().parent / "weights"


class ConceptModel:
    """An SAE plus one name (and a few top-activating texts) per concept."""

    def __init__(self, sae: SparseAutoencoder, names: list[str], name_scores, top_texts: list[list[str]],
                 info: dict | None = None) -> None:
        if len(names) != sae.config.n_latents:
            raise AnytaskError(f"{len(names)} names for {sae.config.n_latents} concepts")
        self.sae = sae.eval()
        self.names = list(names)
        self.name_scores = np.asarray(name_scores, dtype=np.float32)
        self.top_texts = top_texts
        self.info = info or {}

    @property
    def backbone(self) -> str:
        return self.sae.config.backbone

    @property
    def dim(self) -> int:
        return self.sae.config.dim

    @torch.no_grad()
    def activations(self, X) -> np.ndarray:
        """Concept activations scaled by each concept's spread on the pool ``(N, h)``."""
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        return (self.sae.encode(X) / self.sae.act_scale).numpy()

    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        extra, tensors = sae_state(self.sae)
        extra.update(names=self.names, top_texts=self.top_texts, info=self.info)
        tensors["name_scores"] = torch.from_numpy(self.name_scores)
        return extra, tensors

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "ConceptModel":
        scores = tensors.pop("name_scores", None)
        sae = sae_from_state(extra, tensors)
        return cls(sae, extra["names"], scores.numpy() if scores is not None else np.zeros(len(extra["names"])),
                   extra.get("top_texts", []), extra.get("info", {}))


def concept_model_path(name_or_path: str) -> Path:
    candidates = [Path(name_or_path).expanduser()]
    if os.environ.get("ANYTASK_HOME"):
        candidates.append(Path(os.environ["ANYTASK_HOME"]).expanduser() / "concepts" / name_or_path)
    candidates.append(SHIPPED / name_or_path)
    for path in candidates:
        if (path / "config.json").is_file():
            return path
    raise AnytaskError(f"no concept model {name_or_path!r}: looked for config.json in "
                       + ", ".join(str(p) for p in candidates)
                       + ". Train one with benchmarks/concepts/train_sae.py or pass a folder path")


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> ConceptModel:
    from anytask import io

    model = io.load(path)
    if not isinstance(model, ConceptModel):
        raise AnytaskError(f"{path} holds a {type(model).__name__}, not a concept model")
    return model


def load_concept_model(name_or_path: str) -> ConceptModel:
    path = concept_model_path(name_or_path)
    return _load_cached(str(path), (path / "model.safetensors").stat().st_mtime)
