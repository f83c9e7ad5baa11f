"""Ranking metrics over a run (each query's ranked ids) and qrels (each query's relevant ids).

Definitions follow trec_eval / ranx: a query's ranked list is cut at ``k`` where a metric has one;
``relevant`` is a set of ids (binary relevance) or a dict id -> graded gain (nDCG uses the gains,
the rest count gain > 0 as relevant). A query without relevant ids is an error (trec_eval drops such
queries silently; a silently smaller mean is the kind of wrong answer we refuse).

* ``average_precision``: mean over the relevant ids of the precision at each one's rank (unretrieved
  ones count 0), divided by the number of relevant ids — MAP is its mean over queries;
* ``reciprocal_rank``: 1 / rank of the first relevant id (0 if none is retrieved) — MRR;
* ``ndcg``: DCG@k with gain / log2(rank + 1), over the ideal DCG@k of the gains sorted;
* ``r_precision``: precision at R = the number of relevant ids;
* ``rp_at_k``: relevant ids in the top k over min(k, R) — UWE's RP@10, which a query with fewer than
  k relevant ids can still reach 1 on;
* ``recall_at_k``: relevant ids in the top k over R; ``precision_at_k``: over k.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Iterable, Mapping

from anytask.core.errors import AnytaskError



def _gains(relevant) -> dict:
    gains = dict(relevant) if isinstance(relevant, Mapping) else {r: 1.0 for r in relevant}
    gains = {d: float(g) for d, g in gains.items() if float(g) > 0}
    if not gains:
        raise AnytaskError("a query has no relevant ids; drop it from the qrels (its metrics are undefined)")
    return gains


def _check_run(ranked) -> list:
    ranked = list(ranked)
    if len(set(ranked)) != len(ranked):
        raise AnytaskError("a ranked list repeats an id; each id may be retrieved once per query")
    return ranked


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise AnytaskError(f"k={k!r}: give a cut-off of at least 1")
    return k


def average_precision(ranked: Iterable, relevant, k: int | None = None) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    if k is not None:
        ranked = ranked[: _check_k(k)]
    hits, total = 0, 0.0
    for i, d in enumerate(ranked, 1):
        if d in rel:
            hits += 1
            total += hits / i
    return total / len(rel)


def reciprocal_rank(ranked: Iterable, relevant, k: int | None = None) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    for i, d in enumerate(ranked[: _check_k(k)] if k is not None else ranked, 1):
        if d in rel:
            return 1.0 / i
    return 0.0


def ndcg(ranked: Iterable, relevant, k: int = 10) -> float:
    ranked, gains = _check_run(ranked), _gains(relevant)
    k = _check_k(k)
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 1) for i, d in enumerate(ranked[:k], 1))
    ideal = sum(g / math.log2(i + 1) for i, g in enumerate(sorted(gains.values(), reverse=True)[:k], 1))
    return dcg / ideal


def r_precision(ranked: Iterable, relevant) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    return sum(d in rel for d in ranked[: len(rel)]) / len(rel)


def rp_at_k(ranked: Iterable, relevant, k: int = 10) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    k = _check_k(k)
    return sum(d in rel for d in ranked[:k]) / min(k, len(rel))


def recall_at_k(ranked: Iterable, relevant, k: int = 10) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    return sum(d in rel for d in ranked[: _check_k(k)]) / len(rel)


def precision_at_k(ranked: Iterable, relevant, k: int = 10) -> float:
    ranked, rel = _check_run(ranked), _gains(relevant)
    k = _check_k(k)
    return sum(d in rel for d in ranked[:k]) / k


METRICS: dict[str, Callable] = {"map": average_precision, "mrr": reciprocal_rank, "ndcg": ndcg,
                                "r_precision": r_precision, "rp": rp_at_k, "recall": recall_at_k,
                                "precision": precision_at_k}


def _parse(name: str) -> tuple[Callable, dict]:
    base, _, cut = name.partition("@")
    if base not in METRICS:
        raise AnytaskError(f"unknown metric {name!r}; use one of {', '.join(METRICS)} (with @k where it takes a "
                           "cut-off, e.g. ndcg@10)")
    if not cut:
        return METRICS[base], {}
    if base == "r_precision" or not cut.isdigit():
        raise AnytaskError(f"metric {name!r}: write the cut-off as a positive integer, e.g. {base}@10"
                           + (" (r_precision cuts at R itself)" if base == "r_precision" else ""))
    return METRICS[base], {"k": int(cut)}


def evaluate(run: Mapping[Hashable, Iterable], qrels: Mapping[Hashable, object],
             metrics: Iterable[str] = ("map", "rp@10", "mrr", "ndcg@10", "recall@10")) -> dict[str, float]:
    """The mean over the queries of ``qrels`` of each metric; a query the run lacks scores 0 (nothing
    retrieved), a run query absent from ``qrels`` is an error (its relevance is unknown)."""
    extra = [q for q in run if q not in qrels]
    if extra:
        raise AnytaskError(f"{len(extra)} run queries have no qrels (first: {extra[0]!r}); evaluate only judged "
                           "queries")
    if not qrels:
        raise AnytaskError("no queries in the qrels")
    out = {}
    for name in metrics:
        fn, kw = _parse(name)
        out[name] = sum(fn(run.get(q, []), rel, **kw) for q, rel in qrels.items()) / len(qrels)
    return out
