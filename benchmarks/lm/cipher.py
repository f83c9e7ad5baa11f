"""Crosslingual transfer of multitask fine-tuning to a "language" seen only in continued pre-training (card 42).

    python benchmarks/lm/cipher.py --data-root ../shared/data/text --seeds 3 --threads 1 --out benchmarks/lm/cipher.json

BLOOMZ/mT0 (Muennighoff et al. 2023, https://arxiv.org/abs/2211.01786) fine-tune on English prompts and
find zero-shot gains on tasks in languages that appear only in pre-training. Here the new language is
a fixed letter substitution of English (a seeded permutation of a-z, case kept; ``CIPHER_SEED``): every
input text of an evaluation is enciphered, the prompt's field names and the label words stay English
(xP3's English-prompt setting). Four models, every seed:

* ``base``: SmolLM2 as shipped;
* ``cpt``: continued pre-training on the cipher language: LoRA (r = 8, alpha = 16, q/v; Adam 5e-4, batch 4)
  trained by the LM loss on ``--cpt-texts`` enciphered unlabelled training inputs of the nine tasks (no
  labels, no prompts: ``multitask_finetune`` with the start token as every prompt and the text as the
  target), ``--cpt-steps`` steps, then merged into the weights;
* ``mtf``: multitask prompted fine-tuning on the seen clusters in English (as ``mtf.py``: sentiment and
  topic tasks, ``--per-class`` texts per class, ``--steps`` steps, no instructions), on the shipped model;
* ``cpt+mtf``: the same multitask fine-tuning on top of ``cpt``.

Evaluation: zero-shot rank classification (``LMPromptHead(k=0, calibration=None)``) on the held-out
clusters (trec, sms_spam, youtube, subj), ``--max-test`` test texts each, enciphered; ``base`` and
``mtf`` also in English as the reference. The claim holds here if ``cpt+mtf`` beats ``cpt`` on the
enciphered held-out tasks. Nothing was tuned on the test rows; the step counts were set, not swept.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic
from anytask.data import eval_indices, k_shot_indices, load_dataset, task_seed

SEEN = ("sst2", "rotten_tomatoes", "financial_phrasebank", "ag_news", "dbpedia")
HELD_OUT = ("trec", "sms_spam", "youtube", "subj")
CIPHER_SEED = 0


def cipher(seed: int = CIPHER_SEED):
    """A letter substitution (lower and upper case alike) as a ``str.translate`` table."""
    perm = np.random.default_rng(seed).permutation(26)
    low, up = string.ascii_lowercase, string.ascii_uppercase
    return str.maketrans(low + up, "".join(low[i] for i in perm) + "".join(up[i] for i in perm))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--steps", type=int, default=40, help="multitask fine-tuning steps (as mtf.py)")
    ap.add_argument("--cpt-texts", type=int, default=400)
    ap.add_argument("--cpt-steps", type=int, default=60)
    ap.add_argument("--max-chars", type=int, default=200, help="texts are cut here (training and test alike)")
    ap.add_argument("--max-test", type=int, default=60)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/lm/cipher.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.backbones import get_backbone, share_backbone
    from anytask.methods.lm import LMPromptHead, answers_for, multitask_finetune, template, training_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    table = cipher()
    lm = get_backbone("smollm2")
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/lm/cipher.py", *(argv or sys.argv[1:])]), "args": vars(args),
              "torch_threads": torch.get_num_threads(), "seen": SEEN, "held_out": HELD_OUT,
              "example": "the movie was great".translate(table), "rows": [], "training": []}

    def cut(t: str) -> str:
        return t if len(t) <= args.max_chars else t[:args.max_chars].rsplit(" ", 1)[0]

    tests = {}
    for name in HELD_OUT:
        tr, te = load_dataset(name, data_root=args.data_root)
        te = te.subset(eval_indices(name, len(te), args.max_test))
        tests[name] = ([cut(t) for t in te.X], np.asarray(te.y).astype(str), sorted(set(map(str, tr.y))))

    def save():
        write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())

    def evaluate(model_name: str, model: str, seed: int, languages=("cipher",)) -> None:
        for name, (X, y, classes) in tests.items():
            for language in languages:
                start = time.perf_counter()
                texts = [t.translate(table) for t in X] if language == "cipher" else X
                head = LMPromptHead(backbone=model_name, k=0, template=template(name, ()), calibration=None,
                                    verbalizers=answers_for(name, classes))
                pred = head.fit(["-"] * len(classes), classes).predict(texts)  # k = 0: only the label set is used
                row = {"seed": seed, "model": model, "language": language, "task": name,
                       "accuracy": round(float((pred == y).mean()), 4), "seconds": round(time.perf_counter() - start, 2)}
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
        save()

    def trained(model: str, seed: int, start: float, losses: list[float]) -> None:
        result["training"].append({"seed": seed, "model": model, "seconds": round(time.perf_counter() - start, 1),
                                   "loss_first5": float(np.mean(losses[:5])), "loss_last5": float(np.mean(losses[-5:]))})
        print(json.dumps(result["training"][-1]), flush=True)

    evaluate("smollm2", "base", 0, ("cipher", "english"))  # the shipped model does not depend on the seed
    corpus = []
    for name in (*SEEN, *HELD_OUT):  # unlabelled inputs only: the cipher language's "pre-training" text
        tr, _ = load_dataset(name, data_root=args.data_root)
        pick = np.random.default_rng(task_seed(name, "cipher-corpus")).permutation(len(tr.X))[: args.cpt_texts]
        corpus += [cut(tr.X[i]).translate(table) for i in pick]
    for seed in range(args.seeds):
        rng = np.random.default_rng(task_seed("cipher-cpt", seed))
        texts = [corpus[i] for i in rng.choice(len(corpus), args.cpt_texts, replace=False)]
        start = time.perf_counter()
        # the LM loss on each whole text: a "prompt" of the start token alone, the text as the target
        copy, losses = multitask_finetune(lm, [("", t) for t in texts], steps=args.cpt_steps, batch_size=4, lr=5e-4,
                                          seed=seed)
        trained("cpt", seed, start, losses)
        cpt = copy.merged(f"smollm2+cpt-seed{seed}")
        share_backbone(cpt.config.name, cpt)
        evaluate(cpt.config.name, "cpt", seed)
        train = {}
        for name in SEEN:
            tr, _ = load_dataset(name, data_root=args.data_root)
            idx = k_shot_indices(tr.y, args.per_class, task_seed(name, args.per_class, seed))
            train[name] = ([tr.X[i] for i in idx], [str(tr.y[i]) for i in idx])
        for model, base in (("mtf", lm), ("cpt+mtf", cpt)):
            start = time.perf_counter()
            copy, losses = multitask_finetune(base, training_rows(train), steps=args.steps, batch_size=4, lr=5e-4,
                                              seed=seed)
            trained(model, seed, start, losses)
            name = f"smollm2+{model}-seed{seed}"
            share_backbone(name, copy.merged(name))
            evaluate(name, model, seed, ("cipher", "english") if model == "mtf" else ("cipher",))
    save()


if __name__ == "__main__":
    main()
