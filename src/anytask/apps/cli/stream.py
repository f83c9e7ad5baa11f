"""``anytask stream``: continual learning on a task stream, TAME vs baselines."""

from __future__ import annotations

from anytask.apps.cli.common import positive_int
from anytask.core.errors import AnytaskError
from anytask.core.results import command_line, write_results


def add_parser(sub) -> None:
    sp = sub.add_parser("stream", help="continual learning on a task stream: TAME vs baselines")
    sp.add_argument("--stream", default="synthetic", help="synthetic, text, split-mnist or permuted-mnist")
    sp.add_argument("--data-root", default=None, help="the shared data folder (for text and MNIST streams)")
    sp.add_argument("--methods", default="tame,oracle,finetune,replay,ewc",
                    help="comma-separated continual learners from `anytask list` (default: all five)")
    sp.add_argument("--seeds", type=positive_int, default=3, help="number of seeds, 0..N-1 (default: 3)")
    sp.add_argument("--orders", default="forward", help="forward and/or reverse, comma-separated")
    sp.add_argument("--batch-size", type=positive_int, default=32, help="examples per partial_fit call (default: 32)")
    sp.add_argument("--window", type=positive_int, default=20,
                    help="TAME: batch losses the shift detector fits its trend line to (default: 20)")
    sp.add_argument("--sensitivity", type=float, default=3.0,
                    help="TAME: standard errors above the trend that flag a batch (default: 3.0)")
    sp.add_argument("--patience", type=positive_int, default=2,
                    help="TAME: flagged batches in a row that confirm a shift (default: 2)")
    sp.add_argument("--prune", type=float, default=0.0, help="magnitude-prune experts and router to this sparsity")
    sp.add_argument("--out", help="result JSON; .md and .png are written beside it")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.experiments.stream import make_stream, run_stream
    from anytask.experiments.stream_report import stream_markdown, stream_plot
    from anytask.methods.continual import LEARNERS

    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        LEARNERS.get(m)  # unknown names fail here, with suggestions
    runs = []
    for order in args.orders.split(","):
        if order not in ("forward", "reverse"):
            raise AnytaskError(f"unknown order {order!r}; use forward and/or reverse")
        for seed in range(args.seeds):
            tasks = make_stream(args.stream, data_root=args.data_root, seed=seed, reverse=order == "reverse")
            for method in methods:
                run = run_stream(method, tasks, seed=seed, batch_size=args.batch_size, progress=not args.no_progress,
                                 **({"window": args.window, "sensitivity": args.sensitivity,
                                     "patience": args.patience, "prune": args.prune}
                                    if method in ("tame", "oracle") else {}))
                run["order"] = order
                runs.append(run)
                line = f"{args.stream} {order} seed {seed} {method:<9} avg acc {run['average_accuracy']:.3f}"
                if "boundaries" in run:
                    b = run["boundaries"]
                    line += (f"  experts {run['experts']}, boundaries found {b['found']}/{len(b['true'])}, "
                             f"false alarms {b['false_alarms']}, detected at {b['detected']} (true {b['true']})")
                print(line, flush=True)
                for i, row in enumerate(run["accuracy_after_each_task"]):
                    seen = ", ".join(f"{name} {acc:.2f}" for name, acc in row.items())
                    print(f"    after task {i + 1} ({run['tasks'][i]}): {seen}")
    results = {"stream": args.stream, "methods": methods, "seeds": args.seeds, "orders": args.orders.split(","),
               "batch_size": args.batch_size, "runs": runs,
               "command": command_line()}
    print(stream_markdown(results))
    if args.out:
        written = write_results(args.out, results, stream_markdown(results), stream_plot)
        print(f"wrote {', '.join(map(str, written))}")
