"""``anytask index build|add|remove``: a searchable folder of texts embedded by a frozen backbone."""

from __future__ import annotations

import time

from anytask.apps.cli.common import backbone_opts, check_out
from anytask.core.errors import AnytaskError


def _corpus_opts(sp) -> None:
    sp.add_argument("--corpus", required=True, help=".jsonl, .csv or .tsv with a text column (and an id column)")
    sp.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    sp.add_argument("--id-column", default=None, help="column holding each document's unique id (default: the "
                    "row number)")


def add_parser(sub) -> None:
    sp = sub.add_parser("index", help="build, extend or prune a search index of texts")
    actions = sp.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="embed a corpus and write an index folder")
    backbone_opts(build)
    _corpus_opts(build)
    build.add_argument("--index", default="exact", help="index kind from `anytask list` (default: exact)")
    build.add_argument("--out", required=True, help="the index folder to write")
    build.add_argument("--force", action="store_true", help="replace --out if it already exists")
    add = actions.add_parser("add", help="add documents to an index folder (written anew, atomically)")
    add.add_argument("--index", required=True, help="the index folder")
    _corpus_opts(add)
    remove = actions.add_parser("remove", help="remove documents by id from an index folder")
    remove.add_argument("--index", required=True, help="the index folder")
    remove.add_argument("--id", action="append", required=True, help="a document id to remove (repeatable)")
    sp.set_defaults(func=run)


def _read_corpus(args) -> tuple[list[str], list | None]:
    from anytask.data.files import read_table

    table = read_table(args.corpus, text_column=args.text_column, label_column=args.id_column or args.text_column)
    return list(table.X), (table.y.tolist() if args.id_column else None)


def _load(folder: str):
    from anytask.core import io
    from anytask.methods.retrieval import TextIndex

    index = io.load(folder)
    if not isinstance(index, TextIndex):
        raise AnytaskError(f"{folder} holds a {type(index).__name__}, not a search index; build one with "
                           "`anytask index build`")
    return index


def run(args) -> None:
    from anytask.core import io
    from anytask.methods.retrieval import INDEXES, TextIndex

    start = time.perf_counter()
    if args.action == "build":
        check_out(args)
        INDEXES.get(args.index)
        texts, ids = _read_corpus(args)
        index = TextIndex(backbone=args.backbone, index=args.index, cache_dir=args.cache_dir,
                          device=args.device).fit(texts, ids)
        io.save(index, args.out)
        print(f"indexed {len(index)} documents with {args.backbone} in {time.perf_counter() - start:.1f}s; "
              f"saved to {args.out}")
    elif args.action == "add":
        index = _load(args.index)
        texts, ids = _read_corpus(args)
        index.add(texts, ids)
        io.save(index, args.index)
        print(f"added {len(texts)} documents; {args.index} holds {len(index)}")
    else:
        index = _load(args.index)
        known = {str(i): i for i in index.index_.ids_}  # ids typed on the command line are text
        missing = [i for i in args.id if i not in known]
        if missing:
            raise AnytaskError(f"id {missing[0]!r} is not in {args.index}; nothing was removed")
        index.remove([known[i] for i in args.id])
        io.save(index, args.index)
        print(f"removed {len(args.id)} documents; {args.index} holds {len(index)}")
