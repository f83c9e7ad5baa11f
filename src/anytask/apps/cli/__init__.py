"""The ``anytask`` command: thin subcommands over the library (parse, validate, call, print).

One module per subcommand, each with ``add_parser(sub)`` and ``run(args)``; this file only
assembles them (in the order ``--help`` lists them) and turns an AnytaskError into one line and
exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from anytask import __version__
from anytask.core.errors import AnytaskError

SUBCOMMANDS = ("listing", "embed", "fit", "predict", "explain", "index", "search", "bench", "prompt", "generate",
               "merge", "finetune", "stream", "difficulty", "graph", "value", "distill", "infill",
               "serve", "cache", "demo")


def _leaves(sub):
    """The parsers that run something: each subcommand, or each action of one that has actions."""
    for sp in sub.choices.values():
        nested = [a for a in sp._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            yield from _leaves(nested[0])
        else:
            yield sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anytask", description="One frozen backbone, any number of tasks.")
    p.add_argument("--version", action="version", version=f"anytask {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    for sp in _leaves(sub):  # every command (and action: graph train) takes the same two verbosity flags
        group = sp.add_mutually_exclusive_group()
        group.add_argument("-q", "--quiet", action="store_true", help="print results and errors only")
        group.add_argument("-v", "--verbose", action="store_true",
                           help="also show library load bars and warnings with their source lines")
    return p


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"anytask: warning: {message}\n"


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """Default: our own progress bars, one-line warnings, no transformers load bars. Quiet: no bars, no
    warnings. Verbose: everything, warnings with their source."""
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
        warnings.formatwarning = _one_line_warning
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"
        warnings.simplefilter("ignore")
    import logging

    # the library's loggers (anytask.*): what was embedded, on which device, how fast, what auto chose
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING,
                        format="anytask: %(levelname)s %(name)s: %(message)s" if verbose else "anytask: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbosity(args.quiet, args.verbose)
    try:
        args.func(args)
    except AnytaskError as e:
        print(f"anytask {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"anytask {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `anytask list | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
