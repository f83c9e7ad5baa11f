"""The speed / accuracy frontier of backbones: texts per second against few-shot linear-probe accuracy.

    python benchmarks/distill/frontier.py --backbones minilm,int8:minilm,int8-torch:minilm \\
        --out benchmarks/distill/frontier.json

Per backbone: its parameter count; texts/s embedding 512 texts drawn from the shared test sets (seed 0, the same
texts for every backbone) in batches of 32, and the first ``--b1-texts`` (64) of them one at a time, each timed 3
times after a warm-up (mean and spread), no cache, ``--threads`` torch threads (ONNX Runtime gets the same count;
``--speed-only`` re-measures the speed of rows already there, for a run with nothing else on the machine, and
records beside each row the baseline's texts/s of that same run: speed-ups are read within one run); then ``anytask
bench``'s protocol on the 11 shared text tasks: ``linear_probe`` on the frozen embeddings at 8 and 64 labelled
examples per class, seeds 0-2, the first ``--max-test`` test rows (the same rows for every backbone). The baseline
is the first backbone (MiniLM-L6, the teacher): every other row is reported as a difference from it, measured in
the same run. Rows are appended to ``<out>.rows.jsonl`` as backbones finish (a rerun skips them); the JSON and the
plot are written from all rows at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["ag_news", "banking77", "dbpedia", "financial_phrasebank", "imdb", "rotten_tomatoes", "sms_spam", "sst2",
         "subj", "trec", "youtube"]


def speed_texts(data_root: Path, n: int = 512) -> list[str]:
    from anytask.data import load_dataset

    pool = []
    for name in TASKS:
        _, test = load_dataset(name, data_root=data_root)
        pool += list(test.X)
    rng = np.random.default_rng(0)
    return [pool[i] for i in rng.choice(len(pool), n, replace=False)]


def texts_per_second(backbone, texts: list[str], batch_size: int, repeats: int = 3) -> list[float]:
    backbone.embed(texts[:batch_size], batch_size=batch_size)  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        backbone.embed(texts, batch_size=batch_size)
        rates.append(len(texts) / (time.perf_counter() - start))
    return rates


def n_parameters(backbone) -> int:
    inner = getattr(backbone, "base", backbone)  # an int8 backbone counts its float model's weights
    return int(sum(p.numel() for p in getattr(inner, "model", inner).parameters()))


def backbone_row(name: str, label: str, args, texts: list[str]) -> dict:
    from anytask.backbones import create_backbone, get_embedder
    from anytask.experiments.runner import run_bench
    from anytask.experiments.tasks import prepare_tasks

    backbone = create_backbone(name)
    row = {"backbone": name, "label": label, "dim": backbone.config.dim, "parameters": n_parameters(backbone),
           "identity": backbone.identity}
    row["texts_per_s_b32"] = texts_per_second(backbone, texts, 32)
    row["texts_per_s_b1"] = texts_per_second(backbone, texts[:args.b1_texts], 1)
    row["b1_texts"] = args.b1_texts
    print(f"{label}: {np.mean(row['texts_per_s_b32']):.0f} texts/s (batch 32), "
          f"{np.mean(row['texts_per_s_b1']):.0f} (batch 1)", flush=True)
    shots, seeds = [8, 64], [0, 1, 2]
    embedder = get_embedder(name, cache_dir=args.cache_dir)
    tasks, stats = prepare_tasks(TASKS, data_root=args.data_root, shots=shots, seeds=seeds, max_test=args.max_test,
                                 embedder=embedder, progress=True)
    bench = run_bench(tasks, [], shots, seeds, backbone=name, progress=True)
    row["accuracy"] = {f"{r['task']}|{r['shots_per_class']}|{r['seed']}": r["accuracy"] for r in bench["results"]}
    for k in shots:
        per_seed = [np.mean([r["accuracy"] for r in bench["results"] if r["shots_per_class"] == k
                             and r["seed"] == s]) for s in seeds]
        row[f"mean_acc@{k}"] = float(np.mean(per_seed))
        row[f"mean_acc@{k}_std"] = float(np.std(per_seed))
    row["embed_stats"] = {k: v for k, v in stats.items() if k != "short_classes"}
    return row


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, k in zip(axes, (8, 64)):
        for i, r in enumerate(result["rows"]):
            ref = np.mean(r.get("speed_ref_b32", result["rows"][0]["texts_per_s_b32"]))  # the same run's teacher
            x, y = np.mean(r["texts_per_s_b32"]) / ref, r[f"mean_acc@{k}"]
            ax.errorbar(x, y, xerr=np.std(r["texts_per_s_b32"]) / ref, yerr=r[f"mean_acc@{k}_std"], fmt="o", capsize=3,
                        color="#999" if i == 0 else "#3b7dd8")
            ax.annotate(str(i + 1), (x, y), fontsize=8, xytext=(4, 3 if i % 2 else -9), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("speed-up over the teacher (same speed run), batch 32, log")
        ax.set_ylabel(f"mean linear-probe accuracy, {k}/class, 11 tasks")
    key = "\n".join(f"{i + 1}: {r['label']}" for i, r in enumerate(result["rows"]))
    fig.text(0.77, 0.5, key, fontsize=7.5, va="center", family="monospace")
    fig.subplots_adjust(left=0.06, right=0.75, wspace=0.28, bottom=0.13)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backbones", required=True, help="comma-separated backbone names; the first is the baseline")
    p.add_argument("--labels", default=None, help="comma-separated labels (default: the names)")
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "text"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--max-test", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--b1-texts", type=int, default=64, help="texts embedded one at a time for the batch-1 speed "
                   "(default 64; more steadies the figure)")
    p.add_argument("--out", required=True)
    p.add_argument("--speed-only", action="store_true",
                   help="re-measure texts/s of the listed backbones already in the result (nothing else running), "
                        "keeping their accuracy")
    p.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = p.parse_args(argv)
    if args.plot_only:
        plot(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix(".png"))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    names = args.backbones.split(",")
    labels = args.labels.split(",") if args.labels else names
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".rows.jsonl")
    if log.is_file():
        done = [json.loads(line) for line in log.read_text().splitlines()]
    else:  # a fresh checkout: the committed result's rows are the finished ones
        done = json.loads(out.read_text())["rows"] if out.is_file() else []
        log.write_text("".join(json.dumps(r) + "\n" for r in done))
    finished = {r["backbone"] for r in done}
    texts = speed_texts(Path(args.data_root))
    if args.speed_only:
        from anytask.backbones import create_backbone

        for row in done:
            if row["backbone"] in names:
                backbone = create_backbone(row["backbone"])
                row["texts_per_s_b32"] = texts_per_second(backbone, texts, 32)
                row["texts_per_s_b1"] = texts_per_second(backbone, texts[:args.b1_texts], 1)
                row["b1_texts"] = args.b1_texts
                row["speed_threads"] = args.threads
                row["speed_run"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
                print(f"{row['label']}: {np.mean(row['texts_per_s_b32']):.0f} texts/s (batch 32), "
                      f"{np.mean(row['texts_per_s_b1']):.0f} (batch 1)", flush=True)
        # speed-ups are read against the baseline measured in the same run: runs on other days differ
        base = next((r for r in done if r["backbone"] == names[0]), None)
        if base is not None and base["backbone"] in names:
            for row in done:
                if row["backbone"] in names:
                    row["speed_ref_b32"], row["speed_ref_b1"] = base["texts_per_s_b32"], base["texts_per_s_b1"]
        log.write_text("".join(json.dumps(r) + "\n" for r in done))
    for name, label in zip(names, [] if args.speed_only else labels):
        if name in finished:
            continue
        row = backbone_row(name, label, args, texts)
        print(json.dumps({k: v for k, v in row.items() if k != "accuracy"}), flush=True)
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done.append(row)
    if not args.speed_only:  # a speed run lists only some rows: it keeps the order the accuracy runs gave
        order = {n: i for i, n in enumerate(names)}
        done.sort(key=lambda r: order.get(r["backbone"], len(order)))
    previous = json.loads(out.read_text()).get("command", "").splitlines() if out.is_file() else []
    command = shlex.join(["python", "benchmarks/distill/frontier.py", *(argv or sys.argv[1:])])  # labels have spaces
    result = {"command": "\n".join(previous + [command] if command not in previous else previous),
              "tasks": TASKS, "shots": [8, 64], "seeds": [0, 1, 2], "max_test": args.max_test, "rows": done,
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "torch": torch.__version__, "torch_threads": args.threads,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
