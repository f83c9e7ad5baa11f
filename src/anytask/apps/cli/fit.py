"""``anytask fit``: fit a head on labelled texts and save the classifier folder."""

from __future__ import annotations

import time

from anytask.apps.cli.common import parse_params, backbone_opts


def add_parser(sub) -> None:
    sp = sub.add_parser("fit", help="fit a head on labelled texts and save the classifier folder")
    backbone_opts(sp)
    sp.add_argument("--data", required=True, help=".jsonl, .csv or .tsv with a text and a label column")
    sp.add_argument("--head", default="linear_probe", help="a head from `anytask list` (default: linear_probe)")
    sp.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="head parameter, e.g. C=10 (repeatable; values are read as JSON, else as text)")
    sp.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    sp.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    sp.add_argument("--out", required=True, help="folder to save the fitted classifier in")
    sp.add_argument("--force", action="store_true", help="replace --out if it already exists")
    sp.set_defaults(func=run)


def run(args) -> None:
    from pathlib import Path

    from anytask.apps.classifier import TextClassifier
    from anytask.core import io
    from anytask.core.errors import AnytaskError
    from anytask.data import read_table

    if Path(args.out).exists() and not args.force:
        raise AnytaskError(f"--out {args.out} already exists; pass --force to replace it, or choose another folder")
    data = read_table(args.data, text_column=args.text_column, label_column=args.label_column)
    clf = TextClassifier(backbone=args.backbone, head=args.head, head_params=parse_params(args.param) or None,
                         cache_dir=args.cache_dir)
    start = time.perf_counter()
    clf.fit(data.X, data.y)
    io.save(clf, args.out)
    print(f"fitted {args.head} on {len(data)} examples, {len(clf.classes_)} classes "
          f"in {time.perf_counter() - start:.1f}s; saved to {args.out}")
