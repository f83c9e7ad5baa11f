"""Helpers shared by the subcommands: argument types, --param parsing, reading input texts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anytask.core.errors import AnytaskError


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_params(pairs: list[str] | None) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AnytaskError(f"--param takes key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def read_texts(args) -> list[str]:
    if getattr(args, "text", None):
        return list(args.text)
    if not args.input:
        raise AnytaskError("give texts with --text (repeatable) or --input FILE (.jsonl, .csv or .txt)")
    path = Path(args.input)
    if path.suffix.lower() == ".txt":
        from anytask.data.files import read_text_utf8

        if not path.is_file():
            raise AnytaskError(f"input file {path} does not exist")
        return [line for line in read_text_utf8(path).splitlines() if line.strip()]
    from anytask.data.files import read_table

    # inputs need no label: name the text column twice so only it is required
    return list(read_table(path, text_column=args.text_column, label_column=args.text_column).X)


def jsonable(value):
    return value.item() if hasattr(value, "item") else value


def backbone_opts(sp) -> None:
    sp.add_argument("--backbone", default="minilm", help="minilm (default), tiny, hf:<folder>, or an int8 fast path: "
                    "int8:minilm, int8:hf:<folder> (extra fast), int8-torch:<backbone>")
    sp.add_argument("--cache-dir", default=None, help="embedding cache folder (default: $ANYTASK_CACHE_DIR "
                    "or ~/.cache/anytask)")
    sp.add_argument("--device", default="auto", help="auto (default: $ANYTASK_DEVICE, else a CUDA GPU when "
                    "present, else mps, else cpu), cpu, cuda, cuda:N or mps")


def input_opts(sp, what: str) -> None:
    """--input FILE / --text (repeatable) / --text-column: the texts a command reads (see read_texts)."""
    sp.add_argument("--input", help=".jsonl/.csv (text column) or .txt (one text a line)")
    sp.add_argument("--text", action="append", help=f"a text to {what} (repeatable)")
    sp.add_argument("--text-column", default="text", help="column holding the text in --input (default: text)")


def data_opts(sp) -> None:
    """--data / --text-column / --label-column: a labelled training file."""
    sp.add_argument("--data", required=True, help=".jsonl, .csv or .tsv with a text and a label column")
    sp.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    sp.add_argument("--label-column", default="label", help="column holding the label (default: label)")


def out_opts(sp, what: str) -> None:
    """--out FOLDER and --force: a folder the command writes, never replaced without --force."""
    sp.add_argument("--out", required=True, help=what)
    sp.add_argument("--force", action="store_true", help="replace --out if it already exists")


def check_out(args) -> None:
    if Path(args.out).exists() and not args.force:
        raise AnytaskError(f"--out {args.out} already exists; pass --force to replace it, or choose another folder")
