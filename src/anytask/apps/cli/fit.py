"""``anytask fit``: fit a head on labelled texts and save the classifier folder."""

from __future__ import annotations

import time

from anytask.apps.cli.common import backbone_opts, check_out, data_opts, out_opts, parse_params


def add_parser(sub) -> None:
    sp = sub.add_parser("fit", help="fit a head on labelled texts and save the classifier folder")
    backbone_opts(sp)
    data_opts(sp)
    sp.add_argument("--head", default="auto", help="a head from `anytask list` (default: auto, which chooses among "
                    "the fast heads by cross-validation on your examples)")
    sp.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="head parameter, e.g. C=10 (repeatable; values are read as JSON, else as text)")
    out_opts(sp, "folder to save the fitted classifier in")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.apps.classifier import TextClassifier
    from anytask.core import io
    from anytask.data import read_table

    check_out(args)
    data = read_table(args.data, text_column=args.text_column, label_column=args.label_column)
    from anytask.methods.heads import HEADS

    params = parse_params(args.param)
    if "progress" in HEADS.get(args.head)().get_params(deep=False):  # heads that train show their steps
        params.setdefault("progress", not args.quiet)
    clf = TextClassifier(backbone=args.backbone, head=args.head, head_params=params or None,
                         cache_dir=args.cache_dir, device=args.device)
    start = time.perf_counter()
    clf.fit(data.X, data.y)
    io.save(clf, args.out)
    report = getattr(clf.head_, "report_", None)
    chose = f" (chose {report['chosen']}: {report['reason']})" if report else ""
    print(f"fitted {args.head}{chose} on {len(data)} examples, {len(clf.classes_)} classes "
          f"in {time.perf_counter() - start:.1f}s; saved to {args.out}")
