"""Heads: scikit-learn classifiers over frozen features. One file per method, one import line here.

``create_head(name, **params)`` builds one; ``anytask list`` shows them with their papers. Heads
of other families (``icl``, ``concept_bottleneck``, ``prompt_tuning``) live in their family's
folder and register in the same ``HEADS`` registry when their family is imported; ``HEADS``
imports the families on the first name it does not know yet (or the first listing).
"""

from anytask.core.errors import AnytaskError
from anytask.methods.heads.base import HEADS, BaseHead, check_features

# One registration import per method (each module registers itself with @HEADS.register).
from anytask.methods.heads import linear_probe  # noqa: E402,F401
from anytask.methods.heads import centroid  # noqa: E402,F401
from anytask.methods.heads import knn  # noqa: E402,F401
from anytask.methods.heads import zero_shot  # noqa: E402,F401
from anytask.methods.heads import auto  # noqa: E402,F401


# The head a user gets without asking: TextClassifier, `anytask fit` and the service. It chooses among the
# fast heads per task by cross-validation on the labelled examples (docs/results/heads.md).
DEFAULT_HEAD = "auto"


def create_head(name: str, **params) -> BaseHead:
    """A new head by registry name; unknown parameters are an error."""
    cls = HEADS.get(name)
    try:
        return cls(**params)
    except TypeError as e:
        valid = ", ".join(sorted(cls().get_params())) or "none"
        raise AnytaskError(f"bad parameters for head {name!r}: {e}. Valid parameters: {valid}") from None


def needs_backbone(name: str) -> bool:
    """Whether a head embeds text itself or reads backbone-specific weights (zero_shot, concepts)."""
    return HEADS.caps(name).needs_backbone


def reads_texts(name: str, params: dict | None = None) -> bool:
    """Whether head ``name`` built with ``params`` reads raw texts rather than the backbone's features: its
    registered input kind, or the head class's own ``reads_texts(params)`` (``auto`` with an ``lm``)."""
    own = getattr(HEADS.get(name), "reads_texts", None)
    if own is not None and own(params or {}):
        return True
    return HEADS.caps(name).input == "texts"


def create_head_for(name: str, backbone: str | None, cache_dir: str | None = None, **params) -> BaseHead:
    """A head for features of ``backbone``: heads that embed text (label names) or read backbone-specific
    weights are told which backbone (and the embedding cache folder), whenever they take one."""
    accepted = HEADS.get(name)().get_params(deep=False)
    if backbone is not None and "backbone" in accepted:
        if params.setdefault("backbone", backbone) != backbone:
            raise AnytaskError(f"head parameter backbone={params['backbone']!r} contradicts the features' "
                               f"backbone {backbone!r}; leave it out")
        if "cache_dir" in accepted:
            params.setdefault("cache_dir", cache_dir)
    return create_head(name, **params)


__all__ = ["DEFAULT_HEAD", "HEADS", "BaseHead", "check_features", "create_head", "create_head_for", "needs_backbone",
           "reads_texts"]
