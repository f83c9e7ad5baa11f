"""Base-to-novel generalisation (the PromptSRC protocol) on text tasks, MiniLM frozen.

    python benchmarks/prompting/base_to_novel.py --data-root ../shared/data/text \\
        --tasks dbpedia,trec,ag_news,banking77 --shots 4,8,16 --seeds 3 [--methods ...] [--out F]

Each task's classes are split in half once (a fixed permutation of the sorted classes): base and
novel. Training uses k examples per *base* class; the test rows (at most ``--max-test`` per half,
fixed) are scored among the base classes (base accuracy) and, separately, among the novel classes,
which no method saw (novel accuracy); HM is their harmonic mean. Methods, all in one process on
the same samples:

* ``zero_shot``: cosine between the frozen text embedding and the frozen "This text is about {}."
  embedding of each label (no training);
* ``prompts``: plain deep prompt tuning (cross-entropy only);
* ``promptsrc``: prompt tuning with PromptSRC's regularisers and Gaussian prompt aggregation;
* ``linear_probe``: logistic regression on the frozen embeddings (base only: it cannot name a
  class it never saw, so it has no novel accuracy);
* ``setfit``: SetFit on a copy of the same local MiniLM folder (contrastive body fine-tuning +
  logistic head) for base accuracy; novel accuracy is the fine-tuned body's cosine to the label
  texts, i.e. what its fine-tuning left of the zero-shot ability.

Every trained method sees at most ``--max-length`` tokens per text. Large training sets are capped
(banking77's 38 base classes): prompt tuning at ``--max-steps`` optimiser steps (its 20 "epochs"
become 20 equal segments), SetFit at ``--setfit-max-steps`` pair batches instead of the paper's full
20 iterations' worth; the row records the steps each method took.

Rows are appended to the result file as they finish (one row per task, shots, seed, method),
with the adaptation wall time. Summary: ``python benchmarks/prompting/summary.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from anytask.data.sources import LABEL_DESCRIPTIONS, load_task
from anytask.methods.heads import create_head
from anytask.methods.prompting.prompt_tuning import TEMPLATES
from anytask.core.io import write_file_atomic

TEMPLATE = TEMPLATES[0]  # "This text is about {}.": zero-shot's and the prompts' label text


def split(data_root, name, max_test):
    train, test = load_task(data_root, name)
    classes = sorted(set(train.y), key=str)
    order = np.random.default_rng(0).permutation(len(classes))
    base = sorted([classes[i] for i in order[: len(classes) // 2]], key=str)
    novel = sorted([classes[i] for i in order[len(classes) // 2:]], key=str)
    names = {c: LABEL_DESCRIPTIONS.get(name, {}).get(c, str(c).replace("_", " ")) for c in classes}
    rng = np.random.default_rng(1)
    y_te = np.asarray(test.y)

    def rows(group):
        idx = np.flatnonzero(np.isin(y_te, group))
        return np.sort(rng.choice(idx, size=min(max_test, len(idx)), replace=False))
    te_base, te_novel = rows(base), rows(novel)
    return {"train": (list(train.X), np.asarray(train.y)), "base": base, "novel": novel, "names": names,
            "test_base": ([test.X[i] for i in te_base], y_te[te_base]),
            "test_novel": ([test.X[i] for i in te_novel], y_te[te_novel])}


def k_shot(y, classes, k, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), size=min(k, int((y == c).sum())), replace=False)
                           for c in classes])


def cosine_scores(embed, texts, labels, names):
    X = embed(texts)
    L = embed([TEMPLATE.format(names[c]) for c in labels])
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    L = L / np.linalg.norm(L, axis=1, keepdims=True)
    return np.asarray(labels, dtype=object)[np.argmax(X @ L.T, axis=1)]


def train_setfit(texts, y, seed, args):
    """SetFit 1.2 on a copy of the local MiniLM folder; returns the model and its number of body steps."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from setfit.sampler import ContrastiveDataset

    from anytask.backbones.hf import minilm_path

    model = SetFitModel.from_pretrained(str(minilm_path()), local_files_only=True)
    model.model_body.max_seq_length = args.max_length  # SetFit's own max_length only reaches its torch head
    iterations = args.setfit_iterations or None  # 0: the library's default sampling (oversampling)
    # a Hugging Face max_steps means "exactly this many", so it is passed only when it shortens training
    cap_pairs = args.setfit_max_steps * args.setfit_batch
    labels = [str(v) for v in y]
    pairs = len(ContrastiveDataset(texts, labels, None, iterations, "oversampling",
                                   max_pairs=cap_pairs))
    targs = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="setfit-"), save_strategy="no",
                              batch_size=args.setfit_batch, num_iterations=iterations, num_epochs=1,
                              max_steps=args.setfit_max_steps if pairs >= cap_pairs else -1,
                              max_length=args.max_length, seed=seed, show_progress_bar=False, report_to="none")
    trainer = Trainer(model=model, args=targs,
                      train_dataset=Dataset.from_dict({"text": texts, "label": labels}))
    trainer.train()
    return model, int(trainer.st_trainer.state.global_step)


def run_setfit(texts, y, d, seed, args):
    model, steps = train_setfit(texts, y, seed, args)
    base_pred = np.asarray(model.predict(d["test_base"][0]), dtype=object)
    body = lambda t: np.asarray(model.model_body.encode(t, convert_to_numpy=True))  # noqa: E731
    novel_pred = cosine_scores(body, d["test_novel"][0], d["novel"], d["names"])
    return base_pred, novel_pred, {"steps": steps}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default="dbpedia,trec,ag_news,banking77")
    ap.add_argument("--shots", default="4,8,16")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default="zero_shot,prompts,promptsrc,linear_probe,setfit")
    ap.add_argument("--max-test", type=int, default=200)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--setfit-max-steps", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--length", type=int, default=4)
    ap.add_argument("--setfit-iterations", type=int, default=20, help="the SetFit paper's 20; 0: SetFit 1.2's "
                    "default sampling (oversampled unique pairs)")
    ap.add_argument("--setfit-batch", type=int, default=16)
    ap.add_argument("--out", default="benchmarks/prompting/base_to_novel.json")
    args = ap.parse_args(argv)
    from anytask.backbones import get_embedder

    embed = get_embedder("minilm").embed
    methods = args.methods.split(",")
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/prompting/base_to_novel.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "rows": []}

    def log(**row):
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        write_file_atomic(out, json.dumps(result, indent=1).encode())

    for name in args.tasks.split(","):
        d = split(args.data_root, name, args.max_test)
        X_tr, y_tr = d["train"]
        for k in map(int, args.shots.split(",")):
            for seed in range(args.seeds):
                idx = k_shot(y_tr, d["base"], k, seed)
                texts, y = [X_tr[i] for i in idx], y_tr[idx]
                for method in methods:
                    t0 = time.perf_counter()
                    base_pred = novel_pred = None
                    extra = {}
                    if method == "zero_shot":
                        base_pred = cosine_scores(embed, d["test_base"][0], d["base"], d["names"])
                        novel_pred = cosine_scores(embed, d["test_novel"][0], d["novel"], d["names"])
                    elif method in ("prompts", "promptsrc"):
                        head = create_head("prompt_tuning", descriptions={str(c): d["names"][c] for c in d["names"]},
                                           self_regulating=method == "promptsrc", epochs=args.epochs, lr=args.lr,
                                           batch_size=args.batch_size, depth=args.depth, length=args.length,
                                           max_length=args.max_length, max_steps=args.max_steps,
                                           seed=seed).fit(texts, y)
                        fit_s = time.perf_counter() - t0
                        base_pred = head.predict(d["test_base"][0])
                        novel_pred = head.with_labels(d["novel"]).predict(d["test_novel"][0])
                        extra = {"fit_seconds": round(fit_s, 2), "steps": head.n_steps_}
                    elif method == "linear_probe":
                        head = create_head("linear_probe").fit(embed(texts), y)
                        extra = {"fit_seconds": round(time.perf_counter() - t0, 2)}
                        base_pred = head.predict(embed(d["test_base"][0]))
                    elif method == "setfit":
                        base_pred, novel_pred, extra = run_setfit(texts, y, d, seed, args)
                    seconds = time.perf_counter() - t0
                    base_acc = float(np.mean(np.asarray(base_pred).astype(str) == d["test_base"][1].astype(str)))
                    novel_acc = None if novel_pred is None else float(
                        np.mean(np.asarray(novel_pred).astype(str) == d["test_novel"][1].astype(str)))
                    hm = None if novel_acc is None or base_acc + novel_acc == 0 else \
                        2 * base_acc * novel_acc / (base_acc + novel_acc)
                    log(task=name, shots=k, seed=seed, method=method, base=base_acc, novel=novel_acc, hm=hm,
                        seconds=round(seconds, 2), n_base=len(d["base"]), n_novel=len(d["novel"]), **extra)


if __name__ == "__main__":
    main()
