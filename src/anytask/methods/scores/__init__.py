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


__all__ = ["SCORERS", "BaseScorer", "create_scorer", "check_targets", "pearson", "spearman"]
