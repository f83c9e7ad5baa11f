"""Demonstrations chosen by similarity (KATE) against random balanced ones, SmolLM2 prompted few-shot.

    python benchmarks/lm/kate.py --data-root ../shared/data/text --out benchmarks/lm/kate.json

Liu et al. 2022 (What Makes Good In-Context Examples for GPT-3?, https://arxiv.org/abs/2101.06804):
each test text gets the ``k`` labelled texts nearest to it in a sentence encoder's space as its
demonstrations. Per task and seed, from the same pool of ``--pool`` labelled texts per class drawn as
``anytask bench`` draws them, on the same ``--max-test`` test rows, ``lm_prompt`` with:

* ``similar``: ``demos="per_example", selection="similar"`` (all-MiniLM-L6-v2 neighbours, nearest last);
* ``balanced``: ``demos="per_example", selection="balanced"`` (a fresh seeded balanced draw per text,
  GPT-3's protocol: the same cost, the fair baseline);
* ``fixed``: one seeded balanced set for every text (the prompting benchmark's protocol);

each scored raw and with contextual calibration (one scoring pass gives both), with the prompting
benchmark's per-task templates and label words. Nothing was chosen on the test rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic
from anytask.data import eval_indices, k_shot_indices, load_dataset, task_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompting import TEMPLATES, cut, prompt_rows, verbalizers  # noqa: E402

TASKS = ("sst2", "rotten_tomatoes", "financial_phrasebank", "ag_news", "trec", "subj")
SELECTIONS = {"similar": {"demos": "per_example", "selection": "similar"},
              "balanced": {"demos": "per_example", "selection": "balanced"},
              "fixed": {"demos": "fixed", "selection": "balanced"}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--pool", type=int, default=8, help="labelled texts per class to choose demonstrations from")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-test", type=int, default=30)
    ap.add_argument("--max-chars", type=int, default=600)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/lm/kate.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.methods.lm import LMPromptHead

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = Path(args.out)
    result = {"command": "python " + " ".join(["benchmarks/lm/kate.py", *(argv or sys.argv[1:])]), "args": vars(args),
              "rows": json.loads(out.read_text())["rows"] if out.exists() else []}
    done = {(r["task"], r["seed"], r["selection"]) for r in result["rows"]}
    for seed in range(args.seeds):
        for name in args.tasks.split(","):
            train, test = load_dataset(name, data_root=args.data_root)
            test = test.subset(eval_indices(name, len(test), args.max_test))
            test_X, test_y = [cut(t, args.max_chars) for t in test.X], np.asarray(test.y).astype(str)
            idx = k_shot_indices(train.y, args.pool, task_seed(name, args.pool, seed))
            texts, y = [cut(train.X[i], args.max_chars) for i in idx], np.asarray(train.y)[idx].astype(str)
            params = dict(backbone="smollm2", k=args.k, template=TEMPLATES.get(name, "Text: {text}\nLabel:"),
                          verbalizers=verbalizers(name, sorted(set(y))), calibration="contextual", seed=seed)
            for selection, how in SELECTIONS.items():
                if (name, seed, selection) in done:
                    continue
                start = time.perf_counter()
                head = LMPromptHead(**params, **how).fit(texts, y)
                acc, _ = prompt_rows(head, test_X, test_y)  # one scoring pass: summed log-likelihood, raw and calibrated
                row = {"task": name, "seed": seed, "selection": selection, "k": args.k, "pool": args.pool,
                       "n_test": len(test_y), "raw": acc["sum/raw"], "contextual": acc["sum/cal"],
                       "seconds": round(time.perf_counter() - start, 2)}
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
                write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
