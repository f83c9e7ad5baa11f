"""TextScorer: raw texts in, a number out — frozen backbone + embedding cache + a score head.

``TextScorer(head="anchored", head_params={"groups": [[...]]}).fit(texts, ratings).predict(new_texts)``; the
default head is ``ridge`` (penalty by leave-one-out CV). Everything else is TextClassifier's: ``head__<name>``
parameters, the backbone shared and never modified, saved as a folder with the backbone's identity.
"""

from __future__ import annotations

from sklearn.base import RegressorMixin

from anytask.apps.classifier import TextEstimator


class TextScorer(RegressorMixin, TextEstimator):
    def __init__(self, *, backbone: str = "minilm", head="ridge", head_params: dict | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, device: str = "auto") -> None:
        super().__init__(backbone=backbone, head=head, head_params=head_params, cache_dir=cache_dir,
                         use_cache=use_cache, device=device)

    def _registry(self):
        from anytask.methods.scores import SCORERS

        return SCORERS

    def _create_head(self, name: str, params: dict):
        from anytask.methods.scores import create_scorer_for

        return create_scorer_for(name, self.backbone, self.cache_dir, **params)

    def _reads_texts(self, name: str, params: dict | None) -> bool:
        return False

    def _card_fields(self) -> dict:
        lo, hi = self.head_.target_range_
        return {"task": "text scoring: raw texts in, a number out", "head": f"`{self._head_name()}`",
                "backbone": f"`{self.backbone_identity_}`", "target range": f"{lo:g} to {hi:g}"}
