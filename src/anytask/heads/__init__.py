"""Heads: scikit-learn classifiers over frozen features. One file per method, one line here.

``HEADS.get(name)(**params)`` builds one; ``anytask list`` shows them with their papers.
"""

from anytask.registry import Registry

HEADS: Registry = Registry("head")

# One registration import per method (each module registers itself with @HEADS.register).
from anytask.heads import linear_probe  # noqa: E402,F401
from anytask.heads import centroid  # noqa: E402,F401
from anytask.heads import knn  # noqa: E402,F401
from anytask.heads import zero_shot  # noqa: E402,F401
from anytask.heads import concept_bottleneck  # noqa: E402,F401

from anytask.heads.base import BaseHead, check_features  # noqa: E402


def create_head(name: str, **params) -> BaseHead:
    """A new head by registry name; unknown parameters are an error."""
    cls = HEADS.get(name)
    try:
        return cls(**params)
    except TypeError as e:
        from anytask.errors import AnytaskError

        valid = ", ".join(sorted(cls().get_params())) or "none"
        raise AnytaskError(f"bad parameters for head {name!r}: {e}. Valid parameters: {valid}") from None


__all__ = ["HEADS", "BaseHead", "check_features", "create_head"]
