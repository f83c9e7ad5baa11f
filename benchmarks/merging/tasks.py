"""Task arithmetic on MiniLM: standard vs linearised fine-tuning, addition, negation, TIES, DARE.

    python benchmarks/merging/tasks.py --data-root ../shared/data/text [--seeds 1] [--steps 50]
        [--tasks sst2,ag_news,trec,sms_spam] [--out benchmarks/merging/tasks.json]

For every task and seed: fine-tune a copy of MiniLM (frozen label-name head, embeddings frozen,
batch 32, 64 tokens) standard and linearised on 512 training texts; then, with accuracies on
a test subset (same rows for every model):
  * zero-shot (the pre-trained model) and single-task accuracy;
  * addition of all task vectors, lambda chosen on a validation subset from a grid, absolute
    and normalised accuracy (merged / single-task, per task), as the papers report;
  * negation of each task (lambda from a grid): target accuracy and the control task's (the
    next task in the list) accuracy kept, as a share of its zero-shot accuracy (goal >= 95 %);
  * TIES and DARE at the chosen lambda (standard vectors).
The result file is rewritten after every seed, so a run cut short keeps the seeds it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from anytask.backbones.hf import minilm_path
from anytask.data.sources import LABEL_DESCRIPTIONS, load_task
from anytask.merging import merge_state_dicts, save_model_folder
from anytask.merging.finetune import finetune, predict

GRID = (0.3, 0.5, 0.8, 1.0)
NEG_GRID = (0.5, 1.0)


def subsets(data_root: Path, name: str, seed: int, n_train=512, n_val=100, n_test=200):
    train, test = load_task(data_root, name)
    classes = sorted(set(train.y))
    names = [LABEL_DESCRIPTIONS.get(name, {}).get(c, c) for c in classes]
    y_tr = np.array([classes.index(v) for v in train.y])
    y_te = np.array([classes.index(v) for v in test.y])
    rng = np.random.default_rng(seed)
    tr = rng.permutation(len(y_tr))
    te = np.random.default_rng(0).permutation(len(y_te))  # fixed evaluation rows across seeds
    pick = lambda X, idx: [X[i] for i in idx]  # noqa: E731
    return {"names": names,
            "train": (pick(train.X, tr[:n_train]), y_tr[tr[:n_train]]),
            "val": (pick(train.X, tr[n_train:n_train + n_val]), y_tr[tr[n_train:n_train + n_val]]),
            "test": (pick(test.X, te[:n_test]), y_te[te[:n_test]])}


def write_model(state: dict, like: Path, out: Path) -> Path:
    """A loadable folder: ``like``'s files with ``state`` as its weights (records the source)."""
    return save_model_folder(state, like, out, {"finetune.json": json.dumps({"source": str(minilm_path())}).encode()})


def accuracy(folder, split, names, linearized) -> float:
    texts, y = split
    return float(np.mean(predict(folder, texts, names, base=minilm_path(), linearized=linearized) == y))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default="sst2,ag_news,trec,sms_spam")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--out", default="benchmarks/merging/tasks.json")
    args = ap.parse_args(argv)
    tasks = args.tasks.split(",")
    base_dir = minilm_path()
    base_sd = load_file(str(base_dir / "model.safetensors"))
    work = Path(tempfile.mkdtemp(prefix="merge-bench-"))
    rows, start = [], time.perf_counter()

    def log(**row):
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    for seed in range(args.seeds):
        data = {t: subsets(Path(args.data_root), t, seed) for t in tasks}
        zero = {t: accuracy(base_dir, data[t]["test"], data[t]["names"], False) for t in tasks}
        log(seed=seed, kind="zero_shot", acc=zero)
        for mode, lin, lr in (("standard", False, 2e-5), ("linearised", True, 1e-4)):
            tuned = {}
            for t in tasks:
                out = work / f"{mode}-{t}-{seed}"
                finetune(base_dir, *data[t]["train"], data[t]["names"], out, linearized=lin, steps=args.steps,
                         lr=lr, seed=seed, progress=False)
                tuned[t] = load_file(str(out / "model.safetensors"))
            single = {t: accuracy(work / f"{mode}-{t}-{seed}", data[t]["test"], data[t]["names"], lin) for t in tasks}
            log(seed=seed, mode=mode, kind="single_task", acc=single)

            def merged_acc(state, split, which=tasks):
                folder = write_model(state, base_dir, work / "merged")
                return {t: accuracy(folder, data[t][split], data[t]["names"], lin) for t in which}

            models = [tuned[t] for t in tasks]
            val = {lam: merged_acc(merge_state_dicts(base_sd, models, method="task_arithmetic", scale=lam), "val")
                   for lam in GRID}
            best = max(GRID, key=lambda lam: np.mean(list(val[lam].values())))
            add = merged_acc(merge_state_dicts(base_sd, models, method="task_arithmetic", scale=best), "test")
            log(seed=seed, mode=mode, kind="addition", lam=best, acc=add,
                normalized={t: add[t] / single[t] for t in tasks},
                val={str(k): float(np.mean(list(v.values()))) for k, v in val.items()})
            if not lin:
                for method, params in (("ties", {"density": 0.2}), ("dare_linear", {"density": 0.5})):
                    acc = merged_acc(merge_state_dicts(base_sd, models, method=method, scale=best, seed=seed,
                                                       **params), "test")
                    log(seed=seed, mode=mode, kind=method, lam=best, acc=acc)
            for i, t in enumerate(tasks):
                control = tasks[(i + 1) % len(tasks)]
                for lam in NEG_GRID:
                    state = merge_state_dicts(base_sd, [tuned[t]], [-1.0], method="task_arithmetic", scale=lam)
                    acc = merged_acc(state, "test", [t, control])
                    log(seed=seed, mode=mode, kind="negation", task=t, control=control, lam=lam,
                        target_acc=acc[t], target_zero_shot=zero[t], control_acc=acc[control],
                        control_kept=acc[control] / zero[control])
        result = {"command": "python " + " ".join(["benchmarks/merging/tasks.py", *(argv or sys.argv[1:])]),
                  "tasks": tasks, "seeds_done": seed + 1, "steps": args.steps, "rows": rows}
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out} ({seed + 1} seed(s)) at {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
