"""``anytask list``: every method of every family, with its paper."""

from __future__ import annotations


def add_parser(sub) -> None:
    sp = sub.add_parser("list", help="every method of every family, with its paper")
    sp.add_argument("--markdown", action="store_true", help="print the README's method table")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.core.registry import method_table
    from anytask.methods import all_registries

    registries = all_registries()
    if args.markdown:
        print(method_table(registries), end="")
        return
    width = max(len(e.name) for reg in registries for e in reg.entries()) + 2
    for reg in registries:
        print(f"{reg.kind}s ({reg.family}):")
        for e in reg.entries():
            print(f"  {e.name:<{width}}{e.summary}\n  {'':<{width}}[{e.reference}]")
