"""``anytask finetune``: fine-tune a copy of a backbone on labelled texts, for ``anytask merge``."""

from __future__ import annotations

from anytask.apps.cli.common import check_out, data_opts, out_opts, parse_params


def add_parser(sub) -> None:
    sp = sub.add_parser("finetune", help="fine-tune a copy of a backbone folder (the source is never written)")
    data_opts(sp)
    sp.add_argument("--base", default="minilm", help="model folder to start from, or minilm (default)")
    sp.add_argument("--mode", default="standard", help="standard or linearized (see `anytask list`)")
    sp.add_argument("--steps", type=int, default=100, help="optimiser steps (default: 100)")
    sp.add_argument("--lr", type=float, default=5e-5, help="learning rate (default: 5e-5)")
    sp.add_argument("--batch-size", type=int, default=32, help="texts per step (default: 32)")
    sp.add_argument("--optimizer", default="adamw", help="adamw (default), sam, asam or tram")
    sp.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="another finetune() argument, e.g. max_length=64 (repeatable)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device", default="auto", help="where the copy trains: auto (default: a GPU when present), cpu, "
                    "cuda, cuda:N or mps")
    out_opts(sp, "output model folder (written atomically)")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.core.errors import AnytaskError
    from anytask.data import read_table
    from anytask.methods.finetune import FINETUNING
    from anytask.methods.merging import model_folder

    check_out(args)
    if args.steps < 1:
        raise AnytaskError(f"--steps must be at least 1, got {args.steps}")
    train = FINETUNING.get(args.mode)
    data = read_table(args.data, text_column=args.text_column, label_column=args.label_column)
    names = sorted({str(v) for v in data.y})
    if len(names) < 2:
        raise AnytaskError(f"{args.data} has one label ({names[0]!r}); fine-tuning needs at least 2")
    labels = [names.index(str(v)) for v in data.y]
    extra = parse_params(args.param)
    try:
        info = train(model_folder(args.base), list(data.X), labels, names, args.out, steps=args.steps, lr=args.lr,
                     batch_size=args.batch_size, optimizer=args.optimizer, seed=args.seed,
                     progress=not args.quiet, device=args.device, **extra)
    except TypeError as e:
        raise AnytaskError(f"bad --param for finetune: {e}") from None
    print(f"fine-tuned {args.mode} for {args.steps} steps on {len(labels)} texts ({len(names)} labels), final loss "
          f"{info['history'][-1]['loss']:.4f}; wrote {args.out}. Merge it: list it under models: in a merge config "
          f"and run anytask merge CONFIG OUT")
