"""``auto`` with a language model: SmolLM2 prompted zero-shot as a candidate beside the fast heads.

    # 1. choose auto's LM rule on held-out rows of the *training* splits (never the test rows)
    python benchmarks/lm/auto_lm.py --split validation --out benchmarks/lm/auto_lm_validation.json
    # 2. the chosen rule against auto without the LM and the linear probe, on the test rows
    python benchmarks/lm/auto_lm.py --split test --out benchmarks/lm/auto_lm.json

Both draw k examples per class of each shared text task as ``anytask bench`` does and give every method
the same texts; label names are the labels (``_`` read as a space) or ``LABEL_DESCRIPTIONS``, which are
also the LM's answers (what a user of ``TextClassifier(head_params={"lm": "smollm2"})`` gets; the
template is ``lm_prompt``'s default ``"Text: {text}\\nLabel:"``).

``--split validation`` (draw seeds 100+, ``--held`` training rows outside the support as the evaluation
set) records, per draw, the out-of-fold accuracy ``auto`` computes for every candidate (from a fit with
``lm_margin=1``, which never switches to the LM) and every candidate's accuracy on the held-out rows;
the summary replays the choice rule for each default and margin and picks the most accurate.
``--split test`` (seeds 0..n-1, ``--max-test`` fixed test rows) runs the linear probe (the baseline),
``auto``, ``auto`` with ``lm="smollm2"`` and ``auto+lm+prompt`` — the same with the prompting benchmark's
task template and label words in ``lm_params``, as a user who writes a prompt would — end to end from raw
texts, with their wall times and what auto chose.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anytask.core.io import write_file_atomic
from anytask.data import LABEL_DESCRIPTIONS, eval_indices, k_shot_indices, load_dataset, task_seed

FEATURE_CANDIDATES = ("linear_probe", "linear_probe+names", "icl+names", "linear_probe+icl+names")
TASKS = ("ag_news", "banking77", "dbpedia", "financial_phrasebank", "imdb", "rotten_tomatoes", "sms_spam", "sst2",
         "subj", "trec", "youtube")


FEATURE_DEFAULT = "linear_probe+icl+names"
# the rules replayed on the validation draws: (auto's default, lm_margin); None never takes an LM candidate
RULES = [(FEATURE_DEFAULT, None), *[(FEATURE_DEFAULT, m) for m in (-1.0, 0.0, 0.05, 0.1, 0.15, 0.25)],
         *[("default+lm+fitted", m) for m in (None, 0.0, 0.1, 0.25)]]


def replay(row: dict, default: str, lm_margin: float | None, switch_margin: float = 0.25) -> str:
    """The candidate ``AutoHead._choose`` takes for one validation draw's out-of-fold accuracies under a
    rule (an LM default falls back to the feature default where the LM was skipped)."""
    cv = row["cv"]
    if default not in cv:
        default = FEATURE_DEFAULT
    if default not in cv:  # the time budget ran out before the default was tried: the most accurate one tried
        return max(cv, key=lambda c: cv[c])
    better = [c for c in cv if c != default and (
        ("lm" in c and lm_margin is not None and cv[c] - cv[default] > lm_margin)
        or ("lm" not in c and cv[c] - cv[default] > switch_margin))]
    return max(better, key=lambda c: cv[c]) if better else default


def rule_name(default: str, lm_margin: float | None) -> str:
    base = "default blend" if default == FEATURE_DEFAULT else "blend × LM (fitted)"
    return f"{base}, never switch to the LM" if lm_margin is None else f"{base}, LM margin {lm_margin:g}"


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def acc(scores: np.ndarray, y_idx: np.ndarray) -> float:
    return round(float((np.asarray(scores).argmax(1) == y_idx).mean()), 4)


def validation_draw(name, texts, y, held_texts, held_y, seed, budget) -> dict:
    """Out-of-fold (auto's report) and held-out accuracy of every candidate for one support draw."""
    from anytask.backbones import get_embedder
    from anytask.methods.heads.auto import AutoHead
    from anytask.methods.lm.prompt import LMPromptHead

    descriptions = LABEL_DESCRIPTIONS.get(name)
    embed = get_embedder("minilm").embed
    X, Xh = embed(texts), embed(held_texts)
    classes = np.unique(y)
    yh = np.searchsorted(classes, held_y)
    t0 = time.perf_counter()
    probe = AutoHead(lm="smollm2", lm_margin=1.0, time_budget=budget, descriptions=descriptions,
                     seed=seed).fit(texts, y)
    report = probe.report_
    held: dict[str, float] = {}
    blend_scores = {}
    for c in FEATURE_CANDIDATES:
        head = AutoHead(candidates=[c], descriptions=descriptions, seed=seed).fit(X, y)
        blend_scores[c] = head._scores(head.parts_, Xh)  # untempered, as auto's blend adds them
        held[c] = acc(blend_scores[c], yh)
    if "lm" in report["cv"]:
        params = probe._lm_params()
        zero_shot = LMPromptHead(backbone="smollm2", **{**params, "k": 0, "calibration": "contextual"}).fit(texts, y)
        raw_support, raw_held = zero_shot.raw_scores(texts), zero_shot.raw_scores(held_texts)
        fitted = LMPromptHead(backbone="smollm2", **{**params, "k": 0, "calibration": "fitted"})
        fitted.fit(texts, y, raw_scores=raw_support)
        held["lm"] = acc(zero_shot.decide(raw_held), yh)
        f = fitted.decide(raw_held)
        held["lm+fitted"] = acc(f, yh)
        held["default+lm+fitted"] = acc(blend_scores["linear_probe+icl+names"] + f, yh)
    return {"cv": {c: v["accuracy"] for c, v in report["cv"].items()}, "held": held,
            "skipped": report["skipped"], "lm_seconds_per_text": report.get("lm_seconds_per_text"),
            "seconds": round(time.perf_counter() - t0, 2)}


def test_draw(name, k, texts, y, test_X, test_y, seed) -> list[dict]:
    """The probe, auto and auto with the LM, end to end from raw texts (embedding included)."""
    from anytask.apps.classifier import TextClassifier

    from prompting import TEMPLATES, verbalizers

    descriptions = LABEL_DESCRIPTIONS.get(name)
    prompt = {"template": TEMPLATES[name], "verbalizers": verbalizers(name, sorted(set(y)))}
    rows = []
    for method, head, params in (("linear_probe", "linear_probe", {}),
                                 ("auto", "auto", {"descriptions": descriptions, "seed": seed}),
                                 ("auto+lm", "auto", {"descriptions": descriptions, "seed": seed, "lm": "smollm2"}),
                                 ("auto+lm+prompt", "auto", {"descriptions": descriptions, "seed": seed,
                                                             "lm": "smollm2", "lm_params": prompt})):
        params = {k: v for k, v in params.items() if v is not None}
        clf = TextClassifier(head=head, head_params=params or None, use_cache=False)
        t0 = time.perf_counter()
        clf.fit(texts, y)
        t1 = time.perf_counter()
        pred = clf.predict(test_X)
        t2 = time.perf_counter()
        report = getattr(clf.head_, "report_", {})
        rows.append({"task": name, "k": k, "seed": seed, "method": method,
                     "accuracy": round(float((pred.astype(str) == np.asarray(test_y).astype(str)).mean()), 4),
                     "chosen": report.get("chosen"), "lm_skipped": report.get("skipped", {}).get("lm"),
                     "cv": {c: v["accuracy"] for c, v in report.get("cv", {}).items()} or None,
                     "fit_seconds": round(t1 - t0, 3), "predict_seconds": round(t2 - t1, 3),
                     "n_test": len(test_y)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("validation", "test"), required=True)
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--shots", default="4,8,16")
    ap.add_argument("--seeds", type=int, default=3, help="test: seeds 0..n-1; validation: draws 100..100+n-1")
    ap.add_argument("--held", type=int, default=100, help="validation: held-out training rows per task")
    ap.add_argument("--max-test", type=int, default=100)
    ap.add_argument("--max-chars", type=int, default=600, help="texts are cut here at a word boundary (imdb)")
    ap.add_argument("--time-budget", type=float, default=30.0, help="validation: auto's time_budget")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    result = {"command": "python benchmarks/lm/" + Path(__file__).name + " " + " ".join(argv or sys.argv[1:]),
              "split": args.split, "rows": []}
    if out.exists():
        result["rows"] = json.loads(out.read_text())["rows"]
    done = {(r["task"], r["k"], r["seed"]) for r in result["rows"]}
    shots = [int(v) for v in args.shots.split(",")]
    for name in args.tasks.split(","):
        train, test = load_dataset(name, data_root=args.data_root)
        train_X = [cut(t, args.max_chars) for t in train.X]
        train_y = np.asarray(train.y).astype(str)
        if args.split == "test":
            test = test.subset(eval_indices(name, len(test), args.max_test))
            eval_X, eval_y = [cut(t, args.max_chars) for t in test.X], np.asarray(test.y).astype(str)
        for k in shots:
            for s in range(args.seeds):
                seed = s if args.split == "test" else 100 + s
                if (name, k, seed) in done:
                    continue
                idx = k_shot_indices(train_y, k, task_seed(name, k, seed))
                texts, y = [train_X[i] for i in idx], train_y[idx]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if args.split == "validation":
                        rest = np.setdiff1d(np.arange(len(train_y)), idx)
                        pick = np.random.default_rng(task_seed(name, k, seed, "held")).choice(rest, args.held,
                                                                                              replace=False)
                        row = {"task": name, "k": k, "seed": seed,
                               **validation_draw(name, texts, y, [train_X[i] for i in pick], train_y[pick], seed,
                                                 args.time_budget)}
                        rows = [row]
                    else:
                        rows = test_draw(name, k, texts, y, eval_X, eval_y, seed)
                for row in rows:
                    print(json.dumps(row), flush=True)
                result["rows"].extend(rows)
                write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
