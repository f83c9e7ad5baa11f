"""``anytask bench``: tasks x heads x shots x seeds, the baseline in the same run."""

from __future__ import annotations

import os
import sys
import time

from anytask.apps.cli.common import backbone_opts, int_list, positive_int
from anytask.core.results import command_line, write_results


def add_parser(sub) -> None:
    sp = sub.add_parser("bench", help="tasks x heads x shots x seeds, baseline in the same run")
    backbone_opts(sp)
    sp.add_argument("--data-root", default=os.environ.get("ANYTASK_DATA_ROOT"),
                    help="folder of <task>/{train,test}.jsonl (default $ANYTASK_DATA_ROOT)")
    sp.add_argument("--tasks", required=True, help="comma-separated: folders of the data root, sklearn:digits, "
                    "sklearn:wine, sklearn:breast_cancer, synthetic:topics")
    sp.add_argument("--heads", default="linear_probe", help="comma-separated head names (linear_probe is always run)")
    sp.add_argument("--multitask", default="", metavar="METHODS",
                    help="comma-separated multi-task methods (anytask list): all --tasks trained together per shots "
                    "and seed, reported as heads mt:<method> beside the per-task baseline")
    sp.add_argument("--shots", type=int_list, default=[4, 8, 16], help="examples per class, e.g. 4,8,16")
    sp.add_argument("--seeds", type=positive_int, default=5, help="number of seeds, 0..N-1 (default: 5)")
    sp.add_argument("--max-test", type=positive_int, default=1000, help="test rows per task (same rows for every run)")
    sp.add_argument("--out", required=True, help="result JSON; .md and .png are written beside it")
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="run the (task x shots x seed) cells as Ray tasks: a cluster's address, or none for a local "
                    "one (pip install 'anytask[ray]'); the result file equals the local one but for timings")
    sp.add_argument("--workers", type=positive_int, default=None, help="with --ray and no address: local CPUs")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.experiments import prepare_tasks, run_bench
    from anytask.experiments.report import markdown, plot

    start = time.perf_counter()
    tasks = [t for t in args.tasks.split(",") if t]
    heads = [h for h in args.heads.split(",") if h]
    from anytask.methods.heads import HEADS

    for h in heads:
        HEADS.get(h)
    multitask = [m for m in args.multitask.split(",") if m]
    if multitask:
        from anytask.experiments.multitask import multitask_methods

        multitask = multitask_methods(multitask)
    seeds = list(range(args.seeds))
    embedder = None
    if any(not (t.startswith("sklearn:")) for t in tasks):
        from anytask.backbones import Embedder, create_backbone

        embedder = Embedder(create_backbone(args.backbone, device=args.device), cache_dir=args.cache_dir,
                            progress=not args.no_progress)
    data_root = args.data_root
    prepared, stats = prepare_tasks(tasks, data_root=data_root, shots=args.shots, seeds=seeds,
                                    max_test=args.max_test, embedder=embedder, progress=not args.no_progress)
    cells = None
    if args.ray:
        from anytask.experiments.distributed import ray_cells

        cells = ray_cells(None if args.ray == "local" else args.ray, num_cpus=args.workers,
                          backbone=args.backbone if embedder else None, cache_dir=args.cache_dir,
                          progress=not args.no_progress)
    results = run_bench(prepared, heads, args.shots, seeds,
                        backbone=args.backbone if embedder else None,
                        backbone_identity=embedder.backbone.identity if embedder else None,
                        cache_dir=args.cache_dir, progress=not args.no_progress, cells=cells)
    if multitask:
        from anytask.experiments.multitask import PREFIX, run_multitask

        results["results"] += run_multitask(prepared, multitask, args.shots, seeds, progress=not args.no_progress)
        results["heads"] += [PREFIX + m for m in multitask]
        results["multitask"] = multitask
    results["max_test"] = args.max_test
    short = stats.pop("short_classes", [])
    if short:
        results["short_classes"] = short
    results["embedding"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}
    results["wall_seconds"] = round(time.perf_counter() - start, 2)
    results["command"] = command_line()
    table = markdown(results)
    for s in short:
        classes = ", ".join(f"{c!r} ({n})" for c, n in list(s["classes"].items())[:5])
        more = f" and {len(s['classes']) - 5} more" if len(s["classes"]) > 5 else ""
        note = (f"note: {s['task']} has fewer than {s['shots']} training examples in {classes}{more}; those classes "
                f"use all they have, so its k={s['shots']} column is a cap (see n_train in the results)")
        print(note, file=sys.stderr)
        table += f"\n{note}\n"
    calibration = markdown(results, "ece") if all("ece" in r for r in results["results"]) else ""
    written = write_results(args.out, results, table + (f"\nCalibration, {calibration}" if calibration else ""), plot)
    print(table)
    print(f"wrote {', '.join(map(str, written))} in {results['wall_seconds']:.1f}s")
