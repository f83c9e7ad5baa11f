"""``anytask demo``: the tour on data the project makes itself."""

from __future__ import annotations

from pathlib import Path

from anytask.apps.cli.common import backbone_opts


def add_parser(sub) -> None:
    sp = sub.add_parser("demo", help="a two-minute tour on data the project makes itself")
    backbone_opts(sp)
    sp.add_argument("--out", default="anytask-demo", help="folder for the demo's plot and saved model")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.apps.demo import run_demo

    run_demo(Path(args.out), backbone=args.backbone, cache_dir=args.cache_dir)
