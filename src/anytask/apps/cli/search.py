"""``anytask search``: the nearest documents of an index folder for each query, as JSON lines."""

from __future__ import annotations

import json

from anytask.apps.cli.common import input_opts, positive_int, read_texts


def add_parser(sub) -> None:
    sp = sub.add_parser("search", help="search an index folder (see `anytask index build`)")
    sp.add_argument("--index", required=True, help="the index folder")
    sp.add_argument("--query", action="append", dest="text", help="a query (repeatable)")
    input_opts(sp, "search for")
    sp.add_argument("-k", type=positive_int, default=10, help="documents per query (default: 10)")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.apps.cli.index import _load

    index = _load(args.index)
    queries = read_texts(args)
    for query, hits in zip(queries, index.search(queries, k=args.k)):
        print(json.dumps({"query": query, "hits": hits}, ensure_ascii=False))
