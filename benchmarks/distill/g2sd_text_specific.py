"""G2SD's specific stage for text (card 07's text variant): a 3-layer student of MiniLM fine-tuned on one task with
a class head and a DeiT distillation token taught by the teacher's linear probe — against the teacher itself (its
linear probe on frozen MiniLM, the baseline) and the card's ablations, on the same draws in one process per seed:

    python benchmarks/distill/g2sd_text_specific.py --out benchmarks/distill/g2sd_text_specific.json

Rows: ``teacher`` (linear probe on frozen MiniLM-L6: the baseline and the teacher), ``generic only`` (linear probe
on the frozen G2SD text student), ``fine-tune, no teacher`` (the G2SD student fine-tuned on the labels alone),
``specific only`` (the teacher's layers 0, 4, 5 with no generic stage, then specific distillation) and ``G2SD``
(the G2SD text student, then specific distillation). Per task and seed: 64 labelled training rows per class
(``anytask bench``'s draw), 2,000 other training texts as unlabelled task texts (labels dropped; the teacher
labels them), ``anytask bench``'s 500 test rows. Settings fixed before the run, not tuned: 200 steps, batch 32 (half
labelled, half unlabelled), AdamW lr 1e-4 for the encoder and 1e-3 for the heads and the token, 128 tokens. The
students are the folders of the frontier (``benchmarks/distill/students/``, made by the commands in
``g2sd_text.json``; the no-generic student by ``keep=[0, 4, 5]``, no steps, written here).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TASKS = ["ag_news", "trec", "sst2"]
SETTINGS = dict(steps=200, batch_size=32, lr=1e-4, head_lr=1e-3, max_length=128)
ROWS = ["teacher", "generic only", "fine-tune, no teacher", "specific only", "G2SD"]


def plain_student(data_root: str, folder: Path) -> Path:
    """The teacher's layers 0, 4, 5 (the layer-drop choice) with no training: the no-generic-stage student."""
    if (folder / "model.safetensors").is_file():
        return folder
    from anytask.methods.distill import DISTILLERS, corpus_texts

    texts = corpus_texts(["sst2"], data_root=data_root, limit=64)
    return DISTILLERS.get("layer_drop")(keep=[0, 4, 5], steps=0, progress=False).fit(texts).save_student(folder)


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from anytask.backbones import get_embedder
    from anytask.data import eval_indices, k_shot_indices, load_dataset, task_seed
    from anytask.methods.distill import TASK_DISTILLERS
    from anytask.methods.heads import HEADS

    out = Path(spec["work"]) / f"{spec['task']}-s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    task, seed = spec["task"], spec["seed"]
    train, test = load_dataset(task, data_root=spec["data_root"])
    test = test.subset(eval_indices(task, len(test), 500))  # anytask bench's test rows and draws
    idx = k_shot_indices(train.y, 64, task_seed(task, 64, seed))
    X, y = [str(train.X[i]) for i in idx], np.asarray(train.y)[idx]
    rest = np.setdiff1d(np.arange(len(train.y)), idx)
    U = [str(train.X[i]) for i in np.random.default_rng(seed).choice(rest, min(2000, len(rest)), replace=False)]
    Xte, yte = [str(t) for t in test.X], np.asarray(test.y)
    res = {"task": task, "seed": seed, "n_labelled": len(X), "n_unlabelled": len(U), "rows": {}}

    def probe(backbone: str, name: str) -> None:
        t = time.time()
        emb = get_embedder(backbone)
        head = HEADS.get("linear_probe")().fit(emb.embed(X), y)
        res["rows"][name] = {"accuracy": float(np.mean(head.predict(emb.embed(Xte)) == yte)),
                             "fit_s": round(time.time() - t, 1)}

    def tune(student: str, name: str, distill: bool = True) -> None:
        t = time.time()
        clf = TASK_DISTILLERS.get("g2sd_text")(student=student, unlabelled=U, distill=distill, seed=seed,
                                               progress=False, **SETTINGS).fit(X, y)
        res["rows"][name] = {"accuracy": float(np.mean(clf.predict(Xte) == yte)), "fit_s": round(time.time() - t, 1)}

    probe("minilm", "teacher")
    probe(f"hf:{spec['g2sd']}", "generic only")
    tune(spec["g2sd"], "fine-tune, no teacher", distill=False)
    tune(spec["plain"], "specific only")
    tune(spec["g2sd"], "G2SD")
    for r in res["rows"].values():
        r["of_teacher"] = r["accuracy"] / res["rows"]["teacher"]["accuracy"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    print(task, seed, {k: round(v["accuracy"], 3) for k, v in res["rows"].items()}, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default=str(HERE.parents[1].parent / "shared" / "data" / "text"))
    ap.add_argument("--g2sd", default=str(HERE / "students" / "g2sd-text"), help="the G2SD text student folder")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-g2sd-text-specific")
    ap.add_argument("--out", default=str(HERE / "g2sd_text_specific.json"))
    args = ap.parse_args()
    if not (Path(args.g2sd) / "model.safetensors").is_file():
        sys.exit(f"{args.g2sd} holds no student: make it with the command in benchmarks/distill/g2sd_text.json")
    plain = plain_student(args.data_root, HERE / "students" / "minilm-l3-plain")
    specs = [{"task": t, "seed": s, "data_root": args.data_root, "g2sd": args.g2sd, "plain": str(plain),
              "work": args.work} for t in args.tasks.split(",") for s in range(args.seeds)]
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    summary = {}
    for name in ROWS:
        per_task = {}
        for task in args.tasks.split(","):
            acc = [j["rows"][name]["accuracy"] for j in jobs if j["task"] == task]
            per_task[task] = {"mean": float(np.mean(acc)), "sd": float(np.std(acc))}
        seeds = [np.mean([j["rows"][name]["accuracy"] for j in jobs if j["seed"] == s]) for s in range(args.seeds)]
        ratio = [np.mean([j["rows"][name]["of_teacher"] for j in jobs if j["seed"] == s]) for s in range(args.seeds)]
        summary[name] = {"per_task": per_task, "mean": float(np.mean(seeds)), "sd": float(np.std(seeds)),
                         "of_teacher": float(np.mean(ratio)), "of_teacher_sd": float(np.std(ratio)),
                         "fit_s": float(np.mean([j["rows"][name]["fit_s"] for j in jobs]))}
    result = {"benchmark": "g2sd-text-specific", "command": " ".join(["python"] + sys.argv), "settings": SETTINGS,
              "tasks": args.tasks.split(","), "seeds": args.seeds, "shots_per_class": 64, "unlabelled": 2000,
              "max_test": 500, "summary": summary, "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
