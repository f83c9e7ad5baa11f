"""ConceptModel: a trained SAE with its concept names, saved and found like any weights.

Resolution of a name (e.g. ``minilm``): an existing folder path, then
``$ANYTASK_HOME/concepts/<name>``, then the weights shipped in this package
(``anytask/concepts/weights/<name>``); the error lists every path it looked at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from anytask.core.io import Pretrained
from anytask.methods.concepts.sae import SparseAutoencoder, sae_from_state, sae_state
from anytask.core.errors import AnytaskError

SHIPPED = Path(__file__).resolve().parent / "weights"


class ConceptModel(Pretrained):
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
    from anytask.core import io

    return io.find_named(name_or_path, kind="concept model", home_subdir="concepts", shipped=SHIPPED,
                         hint="Train one with `python -m anytask.methods.concepts.train` or pass a folder path")


def load_concept_model(name_or_path: str) -> ConceptModel:
    from anytask.core import io

    return io.load_cached(concept_model_path(name_or_path), ConceptModel, "concept model")
