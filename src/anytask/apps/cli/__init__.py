"""The ``anytask`` command: thin subcommands over the library (parse, validate, call, print).

One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``; this file only
assembles them (in the order ``--help`` lists them) and turns an AnytaskError into one line and
exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from anytask.core.errors import AnytaskError

SUBCOMMANDS = ("listing", "embed", "fit", "predict", "explain", "bench", "merge", "stream", "serve", "demo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anytask", description="One frozen backbone, any number of tasks.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AnytaskError as e:
        print(f"anytask {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
