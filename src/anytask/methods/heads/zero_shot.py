"""Zero-shot classification by similarity to embedded label names or descriptions.

The Uni-Perceiver formulation (Zhu et al. 2021, https://arxiv.org/abs/2112.01522; card 19)
and UWE's cached target spaces (card 22): an input and every candidate label are
embedded by the same frozen encoder, and the label with the highest cosine similarity
wins. No training example is needed: ``ZeroShot(labels=[...]).fit()``.

With examples, each class prototype blends the label embedding with the examples:
``normalize(label_weight * label + sum of unit-norm examples)``, i.e. the label counts
as ``label_weight`` examples (a prior that the data gradually overrides). Label texts
are ``template.format(description)`` averaged over ``templates``; ``descriptions`` maps
terse labels to words (default: the label with ``_`` read as a space).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import Tensor
from torch.nn.functional import normalize

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead
from anytask.methods.heads.centroid import class_means


def label_text(label, descriptions: dict | None) -> str:
    if descriptions and str(label) in descriptions:
        return descriptions[str(label)]
    return str(label).replace("_", " ")


def has_names(classes, descriptions: dict | None = None) -> bool:
    """Whether every class has a name worth embedding: a description, or a label that is a non-empty string
    and not a number ("3" or 3 says nothing about the class)."""
    described = {str(k) for k in (descriptions or {})}

    def named(c) -> bool:
        text = str(c).strip()
        if str(c) in described:
            return True
        try:
            float(text)
            return False
        except ValueError:
            return bool(text)

    return all(named(c) for c in classes)


def name_examples(classes, weight: float, *, descriptions: dict | None, backbone: str, cache_dir: str | None,
                  owner: str) -> np.ndarray | None:
    """The label-name prior as pseudo-examples: each class's embedded name ``(C, D)`` (unit norm), to be
    counted as ``weight`` examples of its class. None (with a warning) when the classes have no names."""
    import warnings

    if not weight:
        return None
    if not has_names(classes, descriptions):
        warnings.warn(f"{owner}: label_prior={weight} asks for label names, but the classes "
                      f"({', '.join(map(str, list(classes)[:4]))}...) are numbers with no descriptions; fitted "
                      "without the names (pass descriptions={label: 'its meaning'} to use them)", stacklevel=3)
        return None
    return ZeroShot(descriptions=descriptions, backbone=backbone, cache_dir=cache_dir).label_embeddings(classes)


@HEADS.register("zero_shot", reference="Uni-Perceiver, Zhu et al. 2021, https://arxiv.org/abs/2112.01522",
                summary="similarity to embedded label names (no examples needed); blends in examples if given",
                output="classes", saveable=True, needs_backbone=True, label_names=True, embeds_text=True)
class ZeroShot(BaseHead):
    _parameter_constraints = {"labels": [list, tuple, None], "descriptions": [dict, None], "templates": [list, tuple],
                              "label_weight": [Interval(Real, 0, None, closed="left")],
                              "scale": [Interval(Real, 0, None, closed="neither")], "backbone": [str],
                              "cache_dir": [str, None]}

    def __init__(self, *, labels: list | None = None, descriptions: dict | None = None,
                 templates: list | tuple = ("{}",), label_weight: float = 4.0, scale: float = 20.0,
                 backbone: str = "minilm", cache_dir: str | None = None) -> None:
        self.labels = labels
        self.descriptions = descriptions
        self.templates = templates
        self.label_weight = label_weight
        self.scale = scale
        self.backbone = backbone
        self.cache_dir = cache_dir

    def label_embeddings(self, classes) -> np.ndarray:
        """Unit-norm embedding of each class's label text, averaged over templates ``(C, D)``."""
        from anytask.backbones import get_embedder

        templates = list(self.templates)
        if not templates or any("{}" not in t for t in templates):
            raise AnytaskError(f"templates must each contain '{{}}' for the label, got {templates!r}")
        embedder = get_embedder(self.backbone, cache_dir=self.cache_dir)
        texts = [t.format(label_text(c, self.descriptions)) for c in classes for t in templates]
        E = torch.from_numpy(embedder.embed(texts)).view(len(classes), len(templates), -1)  # (C, T, D)
        return normalize(normalize(E, dim=-1).mean(1), dim=-1).numpy()

    def fit(self, X=None, y=None):
        if X is None and y is None:
            if not self.labels or len(set(self.labels)) < 2:
                raise AnytaskError("zero_shot without examples needs labels=[...] with at least 2 labels")
            self.classes_ = np.unique(np.asarray(self.labels, dtype=object))
            self._set_prototypes(None, None)
            return self
        if self.labels is not None:
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.labels), key=str)
            if unknown:
                raise AnytaskError(f"y has labels {unknown[:5]} that are not in labels=[...]; add them or drop those rows")
        return super().fit(X, y)

    def _fit(self, X: Tensor, y: Tensor) -> None:
        self._set_prototypes(X, y)

    def _set_prototypes(self, X: Tensor | None, y: Tensor | None) -> None:
        classes = self.classes_
        if self.labels is not None:  # declared labels with no examples still take part
            classes = np.unique(np.concatenate([classes, np.asarray(self.labels, dtype=object)]))
            if X is not None:
                y = torch.from_numpy(np.searchsorted(classes, self.classes_[y.numpy()]))
            self.classes_ = classes
        E = torch.from_numpy(self.label_embeddings(classes))
        if X is not None and E.shape[1] != X.shape[1]:
            raise AnytaskError(f"backbone {self.backbone!r} gives {E.shape[1]}-d label embeddings but X has "
                               f"{X.shape[1]} features; embed X with the same backbone")
        self.n_features_in_ = E.shape[1]
        self.label_prototypes_ = E.numpy()
        proto = self.label_weight * E
        if X is not None:
            proto = proto + class_means(X, y, len(classes))
        self.prototypes_ = normalize(proto, dim=-1).numpy()  # (C, D)

    def _logits(self, X: Tensor) -> Tensor:
        return self.scale * normalize(X.double(), dim=-1) @ torch.from_numpy(self.prototypes_).double().T  # (N, C)

    def _tensors(self) -> dict[str, Tensor]:
        return {"prototypes": torch.from_numpy(self.prototypes_),
                "label_prototypes": torch.from_numpy(self.label_prototypes_)}

    def _load_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.prototypes_ = tensors["prototypes"].float().numpy()
        self.label_prototypes_ = tensors["label_prototypes"].float().numpy()
