"""``anytask fit``: fit a head on labelled texts and save the classifier folder; a score head (``anytask list``:
ridge, anchored) fits numeric targets instead and saves a scorer folder."""

from __future__ import annotations

import time

from anytask.apps.cli.common import backbone_opts, check_out, data_opts, out_opts, parse_params


def add_parser(sub) -> None:
    sp = sub.add_parser("fit", help="fit a head on labelled texts and save the classifier folder")
    backbone_opts(sp)
    data_opts(sp)
    sp.add_argument("--head", default="auto", help="a head from `anytask list` (default: auto, which chooses among "
                    "the fast heads by cross-validation on your examples); a score head (ridge, anchored) reads "
                    "the label column as numbers, or as ordered levels with --param order='[\"low\", \"high\"]'")
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
    from anytask.methods.scores import SCORERS

    params = parse_params(args.param)
    if args.head in SCORERS.names():
        return _fit_scorer(args, data, params)
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


def _fit_scorer(args, data, params: dict) -> None:
    import numpy as np

    from anytask.apps.scorer import TextScorer
    from anytask.core import io

    y = np.asarray(data.y)
    if "order" not in params and y.dtype.kind in "OUS":  # a CSV gives numbers as text: read them as numbers
        try:
            y = np.asarray([float(v) for v in y.tolist()])
        except (TypeError, ValueError):
            pass  # labels that are not numbers: the scorer's error says what to do
    scorer = TextScorer(backbone=args.backbone, head=args.head, head_params=params or None, cache_dir=args.cache_dir,
                        device=args.device)
    start = time.perf_counter()
    scorer.fit(data.X, y)
    io.save(scorer, args.out)
    lo, hi = scorer.head_.target_range_
    print(f"fitted score head {args.head} on {len(data)} examples, targets {lo:g} to {hi:g}, "
          f"in {time.perf_counter() - start:.1f}s; saved to {args.out}")
