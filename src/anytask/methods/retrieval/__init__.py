"""Retrieval: vector indexes (``INDEXES``), rankers over a cached target space (``RANKERS``), search over texts
with a frozen backbone (``TextIndex``) and ranking metrics (``metrics``). One file per method, one import line
here."""

from anytask.methods.retrieval.base import INDEXES, RANKERS, BaseIndex, BaseRanker, check_ids, unit_rows
from anytask.methods.retrieval import exact  # noqa: E402,F401
from anytask.methods.retrieval import hnsw  # noqa: E402,F401
from anytask.methods.retrieval import bm25  # noqa: E402,F401
from anytask.methods.retrieval import uwe  # noqa: E402,F401
from anytask.methods.retrieval import generalist  # noqa: E402,F401
from anytask.methods.retrieval import uni_perceiver  # noqa: E402,F401
from anytask.methods.retrieval.exact import ExactIndex  # noqa: E402
from anytask.methods.retrieval.metrics import METRICS, evaluate  # noqa: E402
from anytask.methods.retrieval.text import TextIndex  # noqa: E402

__all__ = ["INDEXES", "METRICS", "RANKERS", "BaseIndex", "BaseRanker", "ExactIndex", "TextIndex", "check_ids",
           "evaluate", "unit_rows"]
