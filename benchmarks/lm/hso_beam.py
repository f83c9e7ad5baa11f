"""Hidden-state optimisation and conditional beam search on SmolLM2 (card 35).

    python benchmarks/lm/hso_beam.py --data-root ../shared/data/text --threads 2 --out benchmarks/lm/hso_beam.json

1. HSO learning rate, chosen on *training* text: mean next-segment NLL (``segment_nll``, 3 steps) of the
   second half of imdb *training* reviews (cut at 600 characters) after the first, for each rate in
   ``--lrs``; the lowest wins.
2. Language modelling: the same NLL on pairs of consecutive imdb *test* review halves, with and
   without HSO at the chosen rate (the next segment is never seen by the update).
3. Few-shot: ``lm_prompt`` (K demonstrations, contextual calibration) with and without ``hso_steps=3``
   on ``--tasks``, 3 seeds, the same pools and test rows as ``prompting.py``.
4. Decoding: ``--n-prompts`` SST-2 test reviews as "Review: ...\\nOne-sentence summary:", decoded by
   plain beam search and by beam search conditioned on a non-degenerate output (not empty, no repeated
   3-gram), both ``beams=4``, at most 24 new tokens: share of degenerate outputs, mean log-probability
   and length, and examples.
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
from prompting import TEMPLATES, accuracy, cut, verbalizers  # noqa: E402


def halves(text: str) -> tuple[str, str]:
    words = text.split()
    mid = len(words) // 2
    return " ".join(words[:mid]), " " + " ".join(words[mid:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default="sst2,rotten_tomatoes,trec")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-test", type=int, default=50)
    ap.add_argument("--lrs", default="0.001,0.003,0.01,0.03")
    ap.add_argument("--n-segments", type=int, default=16)
    ap.add_argument("--n-prompts", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/lm/hso_beam.json")
    args = ap.parse_args(argv)
    import torch

    from anytask.backbones import get_backbone
    from anytask.methods.lm import LMPromptHead, beam_search, is_degenerate, segment_nll

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    lm = get_backbone("smollm2")
    result = {"command": "python " + " ".join(["benchmarks/lm/hso_beam.py", *(argv or sys.argv[1:])]),
              "args": vars(args), "torch_threads": torch.get_num_threads()}
    out = Path(args.out)

    def save():
        write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())

    # 1. the learning rate, on training reviews (first half -> second half, as in step 2)
    imdb_train, imdb = load_dataset("imdb", data_root=args.data_root)
    rng = np.random.default_rng(0)
    pairs = [halves(cut(imdb_train.X[i], 600)) for i in rng.permutation(len(imdb_train.X))[: args.n_segments]]
    choice = {}
    for lr in map(float, args.lrs.split(",")):
        scores = [segment_nll(lm, [a, b], steps=3, lr=lr) for a, b in pairs]
        choice[lr] = float(np.mean([s["nll_hso"] - s["nll"] for s in scores]))
        print("lr", lr, choice[lr], flush=True)
    lr = min(choice, key=choice.get)
    result["lr_selection"] = {"by": "mean change of next-segment NLL on imdb training review halves",
                              "delta_nll": choice, "chosen": lr}
    save()

    # 2. language modelling on held-out reviews
    reviews = [cut(imdb.X[i], 600) for i in eval_indices("imdb", len(imdb.X), args.n_segments)]
    rows = [segment_nll(lm, list(halves(r)), steps=3, lr=lr) for r in reviews]
    result["lm"] = {"n": len(rows), "nll": float(np.mean([r["nll"] for r in rows])),
                    "nll_hso": float(np.mean([r["nll_hso"] for r in rows])),
                    "improved": int(sum(r["nll_hso"] < r["nll"] for r in rows))}
    print(result["lm"], flush=True)
    save()

    # 3. few-shot with and without HSO
    result["few_shot"] = []
    for seed in range(args.seeds):
        for name in args.tasks.split(","):
            tr, te = load_dataset(name, data_root=args.data_root)
            te = te.subset(eval_indices(name, len(te), args.max_test))
            test_X, test_y = [cut(t, 400) for t in te.X], np.asarray(te.y)
            idx = k_shot_indices(tr.y, 8, task_seed(name, 8, seed))
            texts, y = [tr.X[i] for i in idx], np.asarray(tr.y)[idx].astype(str)
            params = dict(backbone="smollm2", k=args.k, template=TEMPLATES[name],
                          verbalizers=verbalizers(name, sorted(set(y))), seed=seed)
            row = {"task": name, "seed": seed, "k": args.k}
            for steps in (0, 3):
                start = time.perf_counter()
                head = LMPromptHead(hso_steps=steps, hso_lr=lr, **params).fit(texts, y)
                row[f"acc_hso{steps}"] = accuracy(head.decision_function(test_X), head.classes_, test_y)
                row[f"seconds_hso{steps}"] = round(time.perf_counter() - start, 2)
                if steps:
                    row["prompt_nll"] = [round(v, 4) for v in head.hso_losses_]
            result["few_shot"].append(row)
            print(json.dumps(row), flush=True)
            save()

    # 4. decoding
    _, sst = load_dataset("sst2", data_root=args.data_root)
    prompts = [f"Review: {sst.X[i]}\nOne-sentence summary:" for i in eval_indices("sst2", len(sst.X), args.n_prompts)]
    dec = {"plain": [], "conditional": []}
    for p in prompts:
        for mode in dec:
            start = time.perf_counter()
            h = beam_search(lm, p, beams=4, max_new_tokens=24, condition=mode == "conditional")
            dec[mode].append({"text": lm.decode(h.ids), "logp": round(h.logp, 3), "tokens": len(h.ids),
                              "degenerate": is_degenerate(h.ids), "empty": not h.ids,
                              "seconds": round(time.perf_counter() - start, 2)})
        print(json.dumps({m: dec[m][-1] for m in dec}), flush=True)
    result["decoding"] = {m: {"degenerate_share": float(np.mean([r["degenerate"] for r in v])),
                              "empty_share": float(np.mean([r["empty"] for r in v])),
                              "mean_logp": float(np.mean([r["logp"] for r in v])),
                              "mean_tokens": float(np.mean([r["tokens"] for r in v])), "outputs": v}
                          for m, v in dec.items()}
    save()


if __name__ == "__main__":
    main()
