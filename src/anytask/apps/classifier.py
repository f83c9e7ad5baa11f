"""TextClassifier: the raw-input estimator — frozen backbone + embedding cache + any head.

``TextClassifier().fit(texts, labels).predict(new_texts)`` (the default head is ``auto``, which
chooses among the fast heads by cross-validation on the labelled examples). ``head`` is a
registered name (``"linear_probe"``, parameters in ``head_params``) or any scikit-learn classifier
(``create_head("linear_probe", C=0.1)``, ``LogisticRegression()``), cloned on fit. Either way the
head's parameters are reachable as ``head__<name>``, so ``GridSearchCV(clf, {"head__C": [...]})``,
``clone`` and ``set_params`` work as they do on a ``Pipeline``. The
backbone is shared and never modified; only the head is fitted. Saved as a folder
holding the head's tensors and the backbone's identity (name + weights hash), which
is checked again before the loaded classifier embeds anything.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from anytask.core.errors import AnytaskError
from anytask.core.io import Pretrained
from anytask.core.validation import check_input_texts

log = logging.getLogger(__name__)


class TextEstimator(Pretrained, BaseEstimator):
    """The raw-text estimator without its output kind: frozen backbone + embedding cache + a head from one
    registry (``TextClassifier``: classification heads; ``anytask.apps.scorer.TextScorer``: score heads)."""

    def _registry(self):
        from anytask.methods.heads import HEADS

        return HEADS

    def _create_head(self, name: str, params: dict):
        from anytask.methods.heads import create_head_for

        return create_head_for(name, self.backbone, self.cache_dir, **params)

    def _reads_texts(self, name: str, params: dict | None) -> bool:
        from anytask.methods.heads import reads_texts

        return reads_texts(name, params)

    def __init__(self, *, backbone: str = "minilm", head="auto", head_params: dict | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, device: str = "auto") -> None:
        self.backbone = backbone
        self.head = head
        self.head_params = head_params
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.device = device

    def _embedder(self):
        from anytask.backbones import get_embedder

        return get_embedder(self.backbone, cache_dir=self.cache_dir, use_cache=self.use_cache, device=self.device)

    def embed(self, texts) -> np.ndarray:
        expected = getattr(self, "backbone_identity_", None)
        if expected is not None and self.use_cache and hasattr(getattr(self, "head_", None), "n_features_in_"):
            from anytask.backbones.embedder import cached_embeddings

            # a fitted classifier knows its backbone's identity: texts already in the cache need no model load
            hit = cached_embeddings(expected, self.head_.n_features_in_, texts, cache_dir=self.cache_dir)
            if hit is not None:
                return hit
        embedder = self._embedder()
        if expected is not None and embedder.backbone.identity != expected:
            raise AnytaskError(f"this classifier was fitted with backbone {expected}, but {self.backbone!r} "
                               f"now resolves to {embedder.backbone.identity}; refit it")
        return embedder.embed(texts)

    # -- the head: a registered name or an estimator ------------------------------------------------
    def _head_name(self) -> str | None:
        """The registry name of the head (``head`` itself, or the name an anytask head instance is registered
        under); None for an estimator from elsewhere (it reads embeddings)."""
        return self.head if isinstance(self.head, str) else self._registry().name_of(self.head)

    def _head_defaults(self) -> dict:
        """The parameters (with defaults) of the head given by name."""
        return self._registry().get(self.head)().get_params(deep=False)

    def _make_head(self):
        from sklearn.base import clone

        if not isinstance(self.head, str):
            if not (hasattr(self.head, "fit") and hasattr(self.head, "predict")):
                raise AnytaskError(f"head must be a registered head name or a classifier with fit/predict, got "
                                   f"{self.head!r}")
            if self.head_params:
                raise AnytaskError("head_params apply to a head given by name; set the parameters on the head "
                                   "estimator itself (or through set_params(head__<name>=...))")
            return clone(self.head)
        params = dict(self.head_params or {})
        accepted = self._head_defaults()
        if "use_cache" in accepted:  # heads that embed raw texts themselves
            params.setdefault("use_cache", self.use_cache)
        if "device" in accepted:  # heads that run (or train on) the backbone themselves
            params.setdefault("device", self.device)
        return self._create_head(self.head, params)

    def get_params(self, deep: bool = True) -> dict:
        """scikit-learn's, plus ``head__<name>`` for a head given by name (its defaults and ``head_params``)."""
        params = super().get_params(deep=deep)
        if deep and isinstance(self.head, str):
            own = self._head_defaults()
            own.update(self.head_params or {})
            params.update({f"head__{k}": v for k, v in own.items()})
        return params

    def set_params(self, **params):
        """``head__<name>=value`` sets the head's parameter: into ``head_params`` for a head given by name, on the
        estimator (scikit-learn's nesting) otherwise."""
        nested = {k[6:]: params.pop(k) for k in list(params) if k.startswith("head__")}
        super().set_params(**params)
        if not nested:
            return self
        if not isinstance(self.head, str):
            return super().set_params(**{f"head__{k}": v for k, v in nested.items()})
        valid = self._head_defaults()
        unknown = sorted(set(nested) - set(valid))
        if unknown:
            raise AnytaskError(f"head {self.head!r} has no parameter(s) {unknown}; valid: {', '.join(sorted(valid))}")
        self.head_params = {**(self.head_params or {}), **nested}
        return self

    def fit(self, X, y):
        if X is None or (not isinstance(X, str) and hasattr(X, "__len__") and len(X) == 0):
            raise AnytaskError("no training texts; pass a list of texts and one label per text")
        X = check_input_texts(X, what="training texts")
        head = self._make_head()
        start = time.perf_counter()
        head.fit(self._inputs(head, X), y)
        log.info("fitted %s on %d texts in %.1f s", type(head).__name__, len(X), time.perf_counter() - start)
        self.head_ = head
        self._fitted(head)
        self.backbone_identity_ = self._embedder().backbone.identity
        return self

    def _fitted(self, head) -> None:
        """What the estimator exposes of a fitted head (``classes_`` for a classifier)."""

    def _inputs(self, head, X):
        """What the head reads: embeddings, or the raw texts for heads that run the backbone themselves."""
        X = check_input_texts(X)
        name = self._head_name()
        params = self.head_params if isinstance(self.head, str) else head.get_params(deep=False)
        return list(X) if name is not None and self._reads_texts(name, params) else self.embed(X)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "head_")
        return self.head_.predict(self._inputs(self.head_, X))

    # -- persistence (anytask.core.io) ----------------------------------------------------------------
    def _saved_params(self) -> dict:
        """The constructor parameters a saved folder records: a head estimator is recorded by its registered
        name and parameters (folders hold JSON and tensors, never pickles)."""
        params = self.get_params(deep=False)
        if not isinstance(self.head, str):
            name = self._head_name()
            if name is None:
                raise AnytaskError(f"cannot save a TextClassifier whose head is a {type(self.head).__name__}: saved "
                                   "folders hold an anytask head's tensors, never a pickle. Use a registered head "
                                   "(anytask list) or save the fitted head_ with the tools of its own library")
            params.update(head=name, head_params=self.head.get_params(deep=False))
        return params

    def _get_state(self) -> tuple[dict, dict[str, Tensor]]:
        check_is_fitted(self, "head_")
        if not hasattr(self.head_, "_get_state"):
            self._saved_params()  # raises the explanation
        head_extra, head_tensors = self.head_._get_state()
        extra = {"backbone_identity": self.backbone_identity_,
                 "head_class": f"{type(self.head_).__module__}:{type(self.head_).__qualname__}",
                 "head_params": self.head_.get_params(deep=False), "head_extra": head_extra}
        return extra, {f"head.{k}": v for k, v in head_tensors.items()}

    @classmethod
    def _from_state(cls, params: dict, extra: dict, tensors: dict[str, Tensor]) -> "TextEstimator":
        from anytask.core.io import resolve_class

        # a saved folder must not choose where the cache is written, nor which device this machine uses
        clf = cls(**{**params, "cache_dir": None, "device": "auto"})
        head_cls = resolve_class(extra["head_class"])
        head_tensors = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
        clf.head_ = head_cls._from_state(extra["head_params"], extra["head_extra"], head_tensors)
        clf._fitted(clf.head_)
        clf.backbone_identity_ = extra["backbone_identity"]
        return clf


class TextClassifier(ClassifierMixin, TextEstimator):
    """Raw texts in, one of the labels out: a classification head on the frozen backbone's features."""

    def _fitted(self, head) -> None:
        self.classes_ = head.classes_

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "head_")
        return self.head_.predict_proba(self._inputs(self.head_, X))

    def _card_fields(self) -> dict:
        """What the saved folder's model card says beyond its config (anytask.core.io.model_card)."""
        fields = {"task": "text classification: raw texts in, one of the labels out",
                  "head": f"`{self._head_name() or type(self.head_).__name__}`",
                  "backbone": f"`{self.backbone_identity_}`", "classes": list(self.classes_)}
        report = getattr(self.head_, "report_", None)
        if report:
            fields["auto chose"] = f"`{report.get('chosen')}`: {report.get('reason', '')}"
        return fields
