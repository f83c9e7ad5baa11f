"""``anytask infill train / render``: train the small grid infiller (VisualCloze) on procedural image tasks and
save it as a folder; draw a PNG of its infills for any task so a person can look at them."""

from __future__ import annotations

import json

from anytask.apps.cli.common import check_out, out_opts, positive_int


def add_parser(sub) -> None:
    sp = sub.add_parser("infill", help="train the grid infiller (VisualCloze) or render its infills as a PNG")
    isub = sp.add_subparsers(dest="infill_command", required=True, metavar="ACTION")
    tr = isub.add_parser("train", help="train an infiller on grids of the built-in image tasks and save it")
    tr.add_argument("--steps", type=positive_int, default=3000, help="training steps of 48 grids (default 3000, "
                    "about 5 minutes on 2 cores)")
    tr.add_argument("--text", action="store_true", help="also read each task's text prompt (frozen MiniLM)")
    tr.add_argument("--source", default="shapes", choices=("shapes", "mnist"),
                    help="training images: procedural shapes (default) or the shared MNIST digits at 16 px")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--no-progress", action="store_true")
    out_opts(tr, "folder to save the infiller in (config.json + model.safetensors)")
    tr.set_defaults(func=run_train)
    rd = isub.add_parser("render", help="infill grids of one task with a saved infiller and write a PNG")
    rd.add_argument("--model", required=True, help="a folder written by anytask infill train")
    rd.add_argument("--task", required=True, help="an operation (invert, flip_h, transpose, ...) or a composition "
                    "like invert+flip_v")
    rd.add_argument("--rows", type=int, default=2, help="in-context example rows above the query (default 2)")
    rd.add_argument("-n", type=positive_int, default=4, help="grids drawn (default 4)")
    rd.add_argument("--text", action="store_true", help="give the model the task's text prompt too")
    rd.add_argument("--source", default="shapes", choices=("shapes", "mnist"))
    rd.add_argument("--seed", type=int, default=0)
    rd.add_argument("--out", required=True, help="the PNG to write")
    rd.add_argument("--force", action="store_true", help="replace --out if it exists")
    rd.set_defaults(func=run_render)


def _source(name: str, n: int, seed: int):
    from anytask.data.images import mnist_images

    return "shapes" if name == "shapes" else mnist_images(max(n, 2000), 16, seed)


def run_train(args) -> None:
    from anytask.core import io
    from anytask.methods.generative import GridInfiller

    check_out(args)
    model = GridInfiller(steps=args.steps, seed=args.seed, text_backbone="minilm" if args.text else None,
                         verbose=not args.no_progress)
    model.fit(images=None if args.source == "shapes" else _source(args.source, 2000, 10_000 + args.seed))
    model.verbose = False
    io.save(model, args.out)
    print(json.dumps({"saved": str(args.out), "tasks": len(model.tasks_), "steps": args.steps,
                      "parameters": model.n_parameters_, "fit_seconds": model.train_seconds_,
                      "final_loss": model.history_[-1][1]}))


def run_render(args) -> None:
    from pathlib import Path

    from anytask.core import io
    from anytask.core.errors import AnytaskError
    from anytask.data.images import prompt, sheet, task_grids, write_png
    from anytask.methods.generative import GridInfiller

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise AnytaskError(f"--out {out}: give a .png file")
    if out.exists() and not args.force:
        raise AnytaskError(f"--out {out} already exists; pass --force to replace it")
    model = io.load(args.model)
    if not isinstance(model, GridInfiller):
        raise AnytaskError(f"{args.model} holds a {type(model).__name__}, not a grid infiller (anytask infill train)")
    if not 0 <= args.rows <= model.max_context:
        raise AnytaskError(f"--rows {args.rows}: this infiller was trained with 0..{model.max_context} example rows")
    source = _source(args.source, args.n, args.seed)
    grids, truth = task_grids(args.task, args.n, args.rows, size=model.image_size, source=source, seed=args.seed)
    fills = model.infill(grids, prompt(args.task) if args.text else None)
    write_png(out, sheet(grids, fills, truth))
    print(json.dumps({"saved": str(out), "task": args.task, "rows": args.rows, "grids": args.n,
                      "mse": round(float(((fills - truth) ** 2).mean()), 5)}))
