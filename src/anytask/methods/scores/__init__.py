"""Score heads: scikit-learn regressors over frozen features (ratings, quality, ordinal levels).

``create_scorer(name, **params)`` builds one; ``anytask list`` shows them with their papers.
"""

from anytask.core.errors import AnytaskError
from anytask.methods.scores.base import SCORERS, BaseScorer, check_targets, pearson, spearman

from anytask.methods.scores import ridge  # noqa: E402,F401
from anytask.methods.scores import anchored  # noqa: E402,F401


def create_scorer(name: str, **params) -> BaseScorer:
    """A new score head by registry name; unknown parameters are an error."""
    cls = SCORERS.get(name)
    try:
        return cls(**params)
    except TypeError as e:
        valid = ", ".join(sorted(cls().get_params())) or "none"
        raise AnytaskError(f"bad parameters for score head {name!r}: {e}. Valid parameters: {valid}") from None


def create_scorer_for(name: str, backbone: str | None, cache_dir: str | None = None, **params) -> BaseScorer:
    """A score head for features of ``backbone``: heads that embed text (``anchored``'s anchors) are told which
    backbone and embedding cache folder, as ``create_head_for`` does for classification heads."""
    accepted = SCORERS.get(name)().get_params(deep=False)
    if backbone is not None and "backbone" in accepted:
        if params.setdefault("backbone", backbone) != backbone:
            raise AnytaskError(f"score head parameter backbone={params['backbone']!r} contradicts the features' "
                               f"backbone {backbone!r}; leave it out")
        params.setdefault("cache_dir", cache_dir)
    return create_scorer(name, **params)


__all__ = ["SCORERS", "BaseScorer", "create_scorer", "create_scorer_for", "check_targets", "pearson", "spearman"]
