"""The ``anytask`` command: thin subcommands over the library (parse, validate, call, print)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from anytask.core.errors import AnytaskError
from anytask.core.io import write_file_atomic


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _params(pairs: list[str] | None) -> dict:
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


def _read_texts(args) -> list[str]:
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


# -- subcommands -----------------------------------------------------------------------------------
def cmd_list(args) -> None:
    from anytask.core.registry import method_table
    from anytask.methods import all_registries

    registries = all_registries()
    if args.markdown:
        print(method_table(registries), end="")
        return
    width = max(len(e.name) for reg in registries for e in reg.entries()) + 2
    for reg in registries:
        print(f"{reg.family} / {reg.kind}s:")
        for e in reg.entries():
            print(f"  {e.name:<{width}}{e.summary}\n  {'':<{width}}[{e.reference}]")


def cmd_embed(args) -> None:
    import numpy as np

    from anytask.backbones import Embedder, create_backbone

    texts = _read_texts(args)
    embedder = Embedder(create_backbone(args.backbone), cache_dir=args.cache_dir, use_cache=not args.no_cache,
                        progress=True)
    X = embedder.embed(texts)
    if args.out:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, X)
        write_file_atomic(Path(args.out), buf.getvalue())
        print(f"wrote {X.shape[0]} x {X.shape[1]} embeddings to {args.out}")
    else:
        for text, vec in zip(texts, X):
            print(json.dumps({"text": text, "embedding": [round(float(v), 6) for v in vec]}))


def cmd_fit(args) -> None:
    from anytask.core import io
    from anytask.apps.classifier import TextClassifier
    from anytask.data import read_table

    data = read_table(args.data, text_column=args.text_column, label_column=args.label_column)
    clf = TextClassifier(backbone=args.backbone, head=args.head, head_params=_params(args.param) or None,
                         cache_dir=args.cache_dir)
    start = time.perf_counter()
    clf.fit(data.X, data.y)
    io.save(clf, args.out)
    print(f"fitted {args.head} on {len(data)} examples, {len(clf.classes_)} classes "
          f"in {time.perf_counter() - start:.1f}s; saved to {args.out}")


def cmd_predict(args) -> None:
    from anytask.core import io

    clf = io.load(args.model)
    texts = _read_texts(args)
    proba = clf.predict_proba(texts)
    for text, p in zip(texts, proba):
        best = int(p.argmax())
        print(json.dumps({"text": text, "label": _jsonable(clf.classes_[best]),
                          "probabilities": {str(c): round(float(v), 6) for c, v in zip(clf.classes_, p)}}))


def _jsonable(value):
    return value.item() if hasattr(value, "item") else value


def cmd_bench(args) -> None:
    from anytask.experiments import prepare_tasks, run_bench
    from anytask.experiments.report import markdown, plot

    start = time.perf_counter()
    tasks = [t for t in args.tasks.split(",") if t]
    heads = [h for h in args.heads.split(",") if h]
    from anytask.methods.heads import HEADS

    for h in heads:
        HEADS.get(h)
    seeds = list(range(args.seeds))
    embedder = None
    if any(not (t.startswith("sklearn:")) for t in tasks):
        from anytask.backbones import Embedder, create_backbone

        embedder = Embedder(create_backbone(args.backbone), cache_dir=args.cache_dir, progress=not args.no_progress)
    data_root = args.data_root
    prepared, stats = prepare_tasks(tasks, data_root=data_root, shots=args.shots, seeds=seeds,
                                    max_test=args.max_test, embedder=embedder, progress=not args.no_progress)
    results = run_bench(prepared, heads, args.shots, seeds,
                        backbone=args.backbone if embedder else None,
                        backbone_identity=embedder.backbone.identity if embedder else None,
                        cache_dir=args.cache_dir, progress=not args.no_progress)
    results["max_test"] = args.max_test
    results["embedding"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}
    results["wall_seconds"] = round(time.perf_counter() - start, 2)
    results["command"] = "anytask " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = Path(args.out)
    write_file_atomic(out, (json.dumps(results, indent=1) + "\n").encode())
    table = markdown(results)
    calibration = markdown(results, "ece") if all("ece" in r for r in results["results"]) else ""
    write_file_atomic(out.with_suffix(".md"), (f"Command: `{results['command']}`\n\n" + table
                                               + (f"\nCalibration, {calibration}" if calibration else "")).encode())
    plot(results, out.with_suffix(".png"))
    print(table)
    print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')} in {results['wall_seconds']:.1f}s")


def cmd_merge(args) -> None:
    from anytask.methods.merging import merge_folders, read_config

    config = read_config(args.config)
    out = merge_folders(config, args.out_dir, progress=not args.no_progress)
    print(f"merged {len(config.models)} model(s) into {out} with {config.method}; load it as backbone hf:{out}")


def cmd_explain(args) -> None:
    from anytask.core import io
    from anytask.apps.classifier import TextClassifier
    from anytask.methods.concepts.bottleneck import ConceptBottleneck

    clf = io.load(args.model)
    head = clf.head_ if isinstance(clf, TextClassifier) else None
    if not isinstance(head, ConceptBottleneck):
        raise AnytaskError(f"{args.model} is not a concept-bottleneck classifier; fit one with "
                           "anytask fit --head concept_bottleneck")
    texts = _read_texts(args)
    explanations = head.explain(clf.embed(texts), top=args.top)
    for text, e in zip(texts, explanations):
        print(json.dumps({"text": text, "label": _jsonable(e.label), "probability": round(e.probability, 4),
                          "concepts": [{"name": c.name, "index": c.index, "contribution": round(c.contribution, 4),
                                        "activation": round(c.activation, 4), "weight": round(c.weight, 4)}
                                       for c in e.concepts]}))
    if args.html:
        from anytask.methods.concepts.report import explanation_html, write_html

        page = explanation_html(texts, explanations, head.concept_model(), title=f"anytask explain: {args.model}")
        print(f"wrote {write_html(args.html, page)}", file=sys.stderr)


def cmd_stream(args) -> None:
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
               "command": "anytask " + " ".join(shlex.quote(a) for a in sys.argv[1:])}
    print(stream_markdown(results))
    if args.out:
        out = Path(args.out)
        write_file_atomic(out, (json.dumps(results, indent=1) + "\n").encode())
        write_file_atomic(out.with_suffix(".md"), (f"Command: `{results['command']}`\n\n"
                                                   + stream_markdown(results)).encode())
        stream_plot(results, out.with_suffix(".png"))
        print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")


def cmd_serve(args) -> None:
    from anytask.apps.serve import serve

    serve(host=args.host, port=args.port, home=args.home, backbone=args.backbone, token=args.token,
          read_only=args.read_only, dev=args.dev, cache_dir=args.cache_dir)


def cmd_demo(args) -> None:
    from anytask.apps.demo import run_demo

    run_demo(Path(args.out), backbone=args.backbone, cache_dir=args.cache_dir)


# -- parser -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anytask", description="One frozen backbone, any number of tasks.")
    sub = p.add_subparsers(dest="command", required=True)

    def backbone_opts(sp):
        sp.add_argument("--backbone", default="minilm", help="minilm (default), tiny, or hf:<folder>")
        sp.add_argument("--cache-dir", default=None, help="embedding cache folder (default: $ANYTASK_CACHE_DIR "
                        "or ~/.cache/anytask)")

    sp = sub.add_parser("list", help="backbones and heads, with their papers")
    sp.add_argument("--markdown", action="store_true", help="print the README's method table")
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("embed", help="embed texts with a frozen backbone")
    backbone_opts(sp)
    sp.add_argument("--input", help=".jsonl/.csv (text column) or .txt (one text a line)")
    sp.add_argument("--text", action="append", help="a text to embed (repeatable)")
    sp.add_argument("--text-column", default="text")
    sp.add_argument("--out", help="write an (N, D) .npy file instead of JSON lines")
    sp.add_argument("--no-cache", action="store_true")
    sp.set_defaults(func=cmd_embed)

    sp = sub.add_parser("fit", help="fit a head on labelled texts and save the classifier folder")
    backbone_opts(sp)
    sp.add_argument("--data", required=True, help=".jsonl or .csv with text and label columns")
    sp.add_argument("--head", default="linear_probe")
    sp.add_argument("--param", action="append", metavar="KEY=VALUE", help="head parameter (repeatable)")
    sp.add_argument("--text-column", default="text")
    sp.add_argument("--label-column", default="label")
    sp.add_argument("--out", required=True, help="folder to save the fitted classifier in")
    sp.set_defaults(func=cmd_fit)

    sp = sub.add_parser("predict", help="predict labels with a saved classifier")
    sp.add_argument("--model", required=True, help="folder written by anytask fit")
    sp.add_argument("--input", help=".jsonl/.csv (text column) or .txt (one text a line)")
    sp.add_argument("--text", action="append", help="a text to classify (repeatable)")
    sp.add_argument("--text-column", default="text")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("explain", help="prediction plus the named concepts behind it (concept_bottleneck)")
    sp.add_argument("--model", required=True, help="folder written by anytask fit --head concept_bottleneck")
    sp.add_argument("--input", help=".jsonl/.csv (text column) or .txt (one text a line)")
    sp.add_argument("--text", action="append", help="a text to explain (repeatable)")
    sp.add_argument("--text-column", default="text")
    sp.add_argument("--top", type=int, default=5, help="concepts per prediction")
    sp.add_argument("--html", help="also write concept cards to this HTML file")
    sp.set_defaults(func=cmd_explain)

    sp = sub.add_parser("bench", help="tasks x heads x shots x seeds, baseline in the same run")
    backbone_opts(sp)
    sp.add_argument("--data-root", default=os.environ.get("ANYTASK_DATA_ROOT"),
                    help="folder of <task>/{train,test}.jsonl (default $ANYTASK_DATA_ROOT)")
    sp.add_argument("--tasks", required=True, help="comma-separated: folders of the data root, sklearn:digits, "
                    "sklearn:wine, sklearn:breast_cancer, synthetic:topics")
    sp.add_argument("--heads", default="linear_probe", help="comma-separated head names (linear_probe is always run)")
    sp.add_argument("--shots", type=_int_list, default=[4, 8, 16], help="examples per class, e.g. 4,8,16")
    sp.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    sp.add_argument("--max-test", type=int, default=1000, help="test rows per task (same rows for every run)")
    sp.add_argument("--out", required=True, help="result JSON; .md and .png are written beside it")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("merge", help="merge fine-tuned copies of a backbone in weight space (YAML config)")
    sp.add_argument("config", help="YAML: base, models (path, weight), method, parameters, seed")
    sp.add_argument("out_dir", help="output backbone folder (written atomically)")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=cmd_merge)

    sp = sub.add_parser("stream", help="continual learning on a task stream: TAME vs baselines")
    sp.add_argument("--stream", default="synthetic", help="synthetic, text, split-mnist or permuted-mnist")
    sp.add_argument("--data-root", default=None, help="the shared data folder (for text and MNIST streams)")
    sp.add_argument("--methods", default="tame,oracle,finetune,replay,ewc")
    sp.add_argument("--seeds", type=int, default=3)
    sp.add_argument("--orders", default="forward", help="forward and/or reverse, comma-separated")
    sp.add_argument("--batch-size", type=int, default=32)
    sp.add_argument("--window", type=int, default=20)
    sp.add_argument("--sensitivity", type=float, default=3.0)
    sp.add_argument("--patience", type=int, default=2)
    sp.add_argument("--prune", type=float, default=0.0, help="magnitude-prune experts and router to this sparsity")
    sp.add_argument("--out", help="result JSON; .md and .png are written beside it")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=cmd_stream)

    sp = sub.add_parser("serve", help="HTTP service: many tasks on one backbone (FastAPI)")
    backbone_opts(sp)
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--home", required=True, help="folder for the task registry and heads")
    sp.add_argument("--token", default=None, help="bearer token for write endpoints (default $ANYTASK_TOKEN)")
    sp.add_argument("--read-only", action="store_true", help="serve existing tasks; refuse every change")
    sp.add_argument("--dev", action="store_true", help="local development: no token, loopback only")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("demo", help="a two-minute tour on data the project makes itself")
    backbone_opts(sp)
    sp.add_argument("--out", default="anytask-demo", help="folder for the demo's plot and saved model")
    sp.set_defaults(func=cmd_demo)
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
