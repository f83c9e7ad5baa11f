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
from anytask.heads import icl  # noqa: E402,F401
from anytask.heads import prompt_tuning  # noqa: E402,F401

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


def _accepts(name: str, param: str) -> bool:
    import inspect

    return param in inspect.signature(HEADS.get(name)).parameters


def needs_backbone(name: str) -> bool:
    """Whether a head embeds text itself or reads backbone-specific weights (zero_shot, concepts)."""
    return _accepts(name, "backbone")


def create_head_for(name: str, backbone: str | None, cache_dir: str | None = None, **params) -> BaseHead:
    """A head for features of ``backbone``: heads that need the backbone are told which one."""
    if needs_backbone(name):
        if params.setdefault("backbone", backbone) != backbone:
            from anytask.errors import AnytaskError

            raise AnytaskError(f"head parameter backbone={params['backbone']!r} contradicts the features' "
                               f"backbone {backbone!r}; leave it out")
        if _accepts(name, "cache_dir"):
            params.setdefault("cache_dir", cache_dir)
    return create_head(name, **params)


__all__ = ["HEADS", "BaseHead", "check_features", "create_head", "create_head_for", "needs_backbone"]
