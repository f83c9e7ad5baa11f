"""``anytask merge``: weight-space merges of fine-tuned copies (YAML config)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sp = sub.add_parser("merge", help="merge fine-tuned copies of a backbone in weight space (YAML config)")
    sp.add_argument("config", help="YAML: base, models (path, weight), method, parameters, seed")
    sp.add_argument("out_dir", help="output backbone folder (written atomically)")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.methods.merging import merge_folders, read_config

    config = read_config(args.config)
    out = merge_folders(config, args.out_dir, progress=not args.no_progress)
    print(f"merged {len(config.models)} model(s) into {out} with {config.method}; load it as backbone hf:{out}")
