"""Embed: the frozen backbone as a scikit-learn transformer (texts -> features), for ``Pipeline``.

``make_pipeline(Embed("minilm"), StandardScaler(), LogisticRegression())`` fits and predicts on raw
texts with any scikit-learn estimator after the embeddings; ``GridSearchCV`` over it re-embeds
nothing, because every call goes through the on-disk embedding cache (``use_cache=False`` turns it
off). ``fit`` learns nothing: it loads the backbone and records its identity, which ``transform``
checks again, so a pipeline fitted on one set of weights never silently embeds with another.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from anytask.core.errors import AnytaskError
from anytask.core.validation import check_input_texts


class Embed(TransformerMixin, BaseEstimator):
    """``Embed(backbone="minilm").fit_transform(texts) -> (N, D) float32`` embeddings of a frozen backbone."""

    def __init__(self, backbone: str = "minilm", *, cache_dir: str | None = None, use_cache: bool = True,
                 device: str = "auto") -> None:
        self.backbone = backbone
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.device = device

    def _embedder(self):
        from anytask.backbones import get_embedder

        return get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache, device=self.device)

    def fit(self, X=None, y=None):
        """Load the backbone and record its identity and width (no parameters are learned)."""
        if X is not None:
            check_input_texts(X, what="texts")
        embedder = self._embedder()
        self.backbone_identity_ = embedder.backbone.identity
        self.n_features_out_ = embedder.dim
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "backbone_identity_")
        texts = check_input_texts(X, what="texts")
        embedder = self._embedder()
        if embedder.backbone.identity != self.backbone_identity_:
            raise AnytaskError(f"this Embed was fitted with backbone {self.backbone_identity_}, but "
                               f"{self.backbone!r} now resolves to {embedder.backbone.identity}; fit it again")
        return embedder.embed(texts)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "n_features_out_")
        prefix = self.backbone.replace(":", "_").replace("/", "_")
        return np.asarray([f"{prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
