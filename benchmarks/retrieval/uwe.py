"""UWE on ESCO and CISI: BM25, frozen MiniLM and many-to-many fine-tuning under each scorer.

    python benchmarks/retrieval/uwe.py run --configs bm25,frozen-mean,frozen-maxsim,frozen-sli_both \
        --out /tmp/uwe-a.json
    python benchmarks/retrieval/uwe.py run --configs uwe-mean,uwe-maxsim,uwe-sli_both --seeds 0,1,2 --out /tmp/uwe-b.json
    python benchmarks/retrieval/uwe.py merge /tmp/uwe-a.json /tmp/uwe-b.json --out benchmarks/retrieval/uwe.json

ESCO (``--esco``, card 22's small-scale plan): occupations of two whole ISCO major groups (``--unseen``) are
held out of training entirely; of every other occupation, 20 % of the aliases (those that differ from the
label) are held out as test queries and the rest are training pairs (alias → label).
The ISCO-sibling graph of the seen occupations (labels of one 4-digit group are relevant to each other) is
the second, one-sided training graph. Four test tasks, each ranking a whole target space:

* ``job_norm`` — held-out aliases of seen occupations → the 2,942 occupation labels;
* ``job_norm_unseen`` — aliases of the held-out ISCO groups' occupations → the same labels (zero-shot);
* ``desc2occ`` — occupation descriptions (never trained on) → occupation labels;
* ``job_sim`` — labels of the held-out groups' occupations → every other occupation label, relevant: the
  same 4-digit ISCO group.

Skills are left out: in the shared ``skills.jsonl`` the alt labels are not aligned with their rows (an
alias that equals some skill's label names its own row for 8 of 3,991 such aliases, against 173 of 510 for
the occupations; the rest point 2 to 50 rows away — ``skill_alignment`` in the result file counts them), so skill normalisation
would score against wrong answers and training on those pairs would teach noise.

CISI (``--cisi``) is the out-of-domain check: its 76 judged queries against its 1,460 documents (title +
abstract), with the ranker trained on ESCO (documents at 256 tokens for every neural scorer).
Queries are sampled once (``--max-queries``, split seed 0) and are the same for every configuration.
Metrics: MAP and RP@10 (``anytask.methods.retrieval.metrics``, over full rankings), macro over the ESCO
tasks. Configurations: ``bm25``; ``frozen-<scorer>`` (MiniLM as it is, scored by mean-pool cosine, MaxSim
or soft late interaction); ``uwe-<scorer>`` (tuned with that scorer in the loss), on ``--seeds``. τ 0.05,
τ_a 0.1 and α 0.5 (sibling graph) are the card's; the learning rate is chosen by ``select`` on validation
queries carved out of the training pairs (``selection`` in the result file); nothing is chosen on the test
queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from anytask.core.io import write_file_atomic


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def esco_tasks(root: Path, unseen: set[str], max_queries: int, seed: int = 0):
    """(training pairs, sibling sets, tasks); a task is (queries, targets, relevant positions, self position)."""
    rng = np.random.default_rng(seed)
    occ = _jsonl(root / "occupations.jsonl")
    occ_labels = [o["label"] for o in occ]
    train_q, train_t = [], []
    tests = {"job_norm": [], "job_norm_unseen": []}

    def split_aliases(item, task, seen):
        aliases = sorted({a.strip() for a in item["alt_labels"] if a.strip() and a.strip().lower()
                          != item["label"].lower()})
        if not seen:
            tests[task] += [(a, item["label"]) for a in aliases]
            return
        order = rng.permutation(len(aliases))
        n_test = int(round(0.2 * len(aliases))) if len(aliases) >= 2 else 0
        tests[task] += [(aliases[i], item["label"]) for i in order[:n_test]]
        for i in order[n_test:]:
            train_q.append(aliases[i])
            train_t.append(item["label"])

    for o in occ:
        seen = o["isco_group"][:1] not in unseen
        split_aliases(o, "job_norm" if seen else "job_norm_unseen", seen)
    groups: dict[str, list[str]] = {}
    for o in occ:
        groups.setdefault(o["isco_group"], []).append(o["label"])
    sets = [g for code, g in groups.items() if code[:1] not in unseen and len(g) >= 2]

    def sample(items, n):
        return [items[i] for i in sorted(rng.choice(len(items), size=min(n, len(items)), replace=False))]

    tasks = {}
    for name, targets in (("job_norm", occ_labels), ("job_norm_unseen", occ_labels)):
        pos = {t: i for i, t in enumerate(targets)}
        pairs = sample(tests[name], max_queries)
        tasks[name] = ([q for q, _ in pairs], targets, [{pos[t]} for _, t in pairs], None)
    pos = {t: i for i, t in enumerate(occ_labels)}
    described = sample([o for o in occ if o.get("description")], max_queries // 2)
    tasks["desc2occ"] = ([o["description"] for o in described], occ_labels, [{pos[o["label"]]} for o in described],
                         None)
    sim = [o for o in occ if o["isco_group"][:1] in unseen and len(groups[o["isco_group"]]) >= 2]
    sim = sample(sim, max_queries)
    tasks["job_sim"] = ([o["label"] for o in sim], occ_labels,
                        [{pos[t] for t in groups[o["isco_group"]] if t != o["label"]} for o in sim],
                        [pos[o["label"]] for o in sim])
    return (train_q, train_t), sets, tasks


def alignment(path: Path) -> dict:
    """How many aliases that equal some row's label (as a set of words) equal their own row's label."""
    import re

    rows = _jsonl(path)
    words = [frozenset(re.findall(r"[a-z]+", r["label"].lower())) for r in rows]
    where: dict = {}
    for i, w in enumerate(words):
        where.setdefault(w, set()).add(i)
    matched = own = 0
    for i, r in enumerate(rows):
        for a in r["alt_labels"]:
            hit = where.get(frozenset(re.findall(r"[a-z]+", a.lower())))
            if hit:
                matched, own = matched + 1, own + (i in hit)
    return {"aliases_equal_to_a_label": matched, "of_which_their_own_row": own}


def cisi_task(root: Path):
    docs = _jsonl(root / "docs.jsonl")
    queries = {q["id"]: q["text"] for q in _jsonl(root / "queries.jsonl")}
    pos = {d["id"]: i for i, d in enumerate(docs)}
    rel: dict[str, set] = {}
    for line in (root / "qrels.tsv").read_text().splitlines()[1:]:
        q, d, r = line.split("\t")
        if int(r) > 0 and d in pos:
            rel.setdefault(q, set()).add(pos[d])
    judged = sorted(rel, key=int)
    return ([queries[q] for q in judged], [f"{d.get('title', '')}. {d['text']}" for d in docs],
            [rel[q] for q in judged], None)


def evaluate_task(ranker, task, max_length: int | None = None) -> dict:
    from anytask.methods.retrieval.metrics import evaluate

    queries, targets, relevant, self_pos = task
    if max_length is not None:
        ranker.set_params(max_length=max_length)
    ranker.set_targets(targets)
    t0 = time.perf_counter()
    S = ranker.score(queries)
    seconds = time.perf_counter() - t0
    if self_pos is not None:  # job similarity: a job is not its own neighbour
        S[np.arange(len(queries)), self_pos] = -np.inf
    order = np.argsort(-S, axis=1, kind="stable")
    run = {i: order[i].tolist() for i in range(len(queries))}
    qrels = {i: rel for i, rel in enumerate(relevant)}
    out = evaluate(run, qrels, ["map", "rp@10"])
    return {"map": round(100 * out["map"], 2), "rp@10": round(100 * out["rp@10"], 2), "n_queries": len(queries),
            "n_targets": len(targets), "score_ms_per_query": round(1000 * seconds / len(queries), 3)}


def make_ranker(config: str, seed: int, args):
    from anytask.methods.retrieval import RANKERS

    if config == "bm25":
        return RANKERS.get("bm25")()
    kind, scorer = config.split("-", 1)
    return RANKERS.get("uwe")(scorer=scorer, steps=args.steps if kind == "uwe" else 0, seed=seed, lr=args.lr,
                              tau=args.tau, tau_a=args.tau_a, batch_targets=args.batch_targets,
                              max_length=args.max_length, progress=args.progress)


def run(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    (train_q, train_t), sets, tasks = esco_tasks(Path(args.esco), set(args.unseen.split(",")), args.max_queries)
    cisi = cisi_task(Path(args.cisi)) if Path(args.cisi).is_dir() else None
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    result["commands"] = result.get("commands", []) + ["python benchmarks/retrieval/uwe.py " + " ".join(sys.argv[1:])]
    result["split"] = {"unseen_major_groups": args.unseen, "train_pairs": len(train_q), "sibling_sets": len(sets),
                       "max_queries": args.max_queries, "tasks": {k: len(v[0]) for k, v in tasks.items()},
                       "skill_alignment": alignment(Path(args.esco) / "skills.jsonl"),
                       "occupation_alignment": alignment(Path(args.esco) / "occupations.jsonl")}
    for config in args.configs.split(","):
        for seed in ([0] if not config.startswith("uwe") else [int(s) for s in args.seeds.split(",")]):
            t0 = time.perf_counter()
            ranker = make_ranker(config, seed, args).fit(train_q, train_t, sets=sets)
            fit_seconds = time.perf_counter() - t0
            row = {"config": config, "seed": seed, "fit_seconds": round(fit_seconds, 1), "tasks": {}}
            for name, task in tasks.items():
                row["tasks"][name] = evaluate_task(ranker, task)
                print(config, seed, name, row["tasks"][name], flush=True)
            row["esco_macro"] = {m: round(float(np.mean([v[m] for v in row["tasks"].values()])), 2)
                                 for m in ("map", "rp@10")}
            if cisi is not None and (args.cisi_seeds is None or seed in [int(v) for v in args.cisi_seeds.split(",")]):
                row["cisi"] = evaluate_task(ranker, cisi, max_length=256 if config != "bm25" else None)
                print(config, seed, "cisi", row["cisi"], flush=True)
            curve = getattr(ranker, "loss_curve_", [])
            if curve:
                row["loss_first_last"] = [round(float(np.mean(curve[:20])), 4), round(float(np.mean(curve[-20:])), 4)]
            result["rows"] = [r for r in result["rows"] if (r["config"], r["seed"]) != (config, seed)] + [row]
            result["args"] = {k: v for k, v in vars(args).items() if k not in ("out", "configs", "seeds", "func")}
            write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


def select(args) -> None:
    """Choose the learning rate on the training pairs only: a fifth of every seen occupation's training aliases
    become validation queries, the rest train; the best validation MAP wins (the test queries are never read)."""
    import torch

    from anytask.methods.retrieval import RANKERS

    torch.set_num_threads(args.threads)
    (train_q, train_t), sets, _ = esco_tasks(Path(args.esco), set(args.unseen.split(",")), args.max_queries)
    rng = np.random.default_rng(1)
    held = rng.random(len(train_q)) < 0.2
    fit_q = [q for q, h in zip(train_q, held) if not h]
    fit_t = [t for t, h in zip(train_t, held) if not h]
    val = [(q, t) for q, t, h in zip(train_q, train_t, held) if h]
    val = [val[i] for i in sorted(rng.choice(len(val), size=min(args.max_queries, len(val)), replace=False))]
    labels = sorted({json.loads(line)["label"] for line in (Path(args.esco) / "occupations.jsonl").read_text()
                     .splitlines() if line.strip()})
    pos = {t: i for i, t in enumerate(labels)}
    task = ([q for q, _ in val], labels, [{pos[t]} for _, t in val], None)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result.setdefault("selection", {"command": "python benchmarks/retrieval/uwe.py " + " ".join(sys.argv[1:]),
                                    "validation_queries": len(val), "train_pairs": len(fit_q), "rows": []})
    for lr in [float(v) for v in args.lrs.split(",")]:
        ranker = RANKERS.get("uwe")(scorer=args.scorer, steps=args.steps, lr=lr, batch_targets=args.batch_targets,
                                    max_length=args.max_length, seed=0).fit(fit_q, fit_t, sets=sets)
        row = {"scorer": args.scorer, "lr": lr, "steps": args.steps, **evaluate_task(ranker, task)}
        print(row, flush=True)
        result["selection"]["rows"].append(row)
        write_file_atomic(out, (json.dumps(result, indent=1) + "\n").encode())


def merge(args) -> None:
    parts = [json.loads(Path(p).read_text()) for p in args.files]
    runs = [p for p in parts if "rows" in p]
    parts = runs + [p for p in parts if "rows" not in p]
    merged = {"commands": [c for p in runs for c in p["commands"]] + [
        "python benchmarks/retrieval/uwe.py merge " + " ".join(sys.argv[2:])],
              "split": runs[0]["split"], "rows": [r for p in runs for r in p["rows"]]}
    merged["command"] = "\n".join(merged["commands"])
    chosen = [p["selection"] for p in parts if "selection" in p]
    if chosen:
        merged["selection"] = chosen[0]
    for p in runs[1:]:
        if p["split"] != merged["split"]:
            raise SystemExit("the parts were run on different splits; rerun them alike")
    # the configurations each part ran, with its arguments (a frozen part's lr is unused)
    merged["args_by_part"] = [{"configs": sorted({r["config"] for r in p["rows"]}), **p["args"]} for p in runs]
    write_file_atomic(Path(args.out), (json.dumps(merged, indent=1) + "\n").encode())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(required=True)
    r = sub.add_parser("run")
    r.add_argument("--esco", default="../shared/data/retrieval/esco")
    r.add_argument("--cisi", default="../shared/data/retrieval/cisi")
    r.add_argument("--unseen", default="3,6", help="ISCO major groups held out of training (zero-shot targets)")
    r.add_argument("--max-queries", type=int, default=1000)
    r.add_argument("--configs", default="bm25,frozen-mean,frozen-maxsim,frozen-sli_both,uwe-mean,uwe-maxsim,"
                                        "uwe-sli_both")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--steps", type=int, default=300)
    r.add_argument("--lr", type=float, default=1e-4)
    r.add_argument("--tau", type=float, default=0.05)
    r.add_argument("--tau-a", type=float, default=0.1)
    r.add_argument("--batch-targets", type=int, default=32)
    r.add_argument("--max-length", type=int, default=64)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--cisi-seeds", default=None,
                   help="seeds evaluated on CISI too (default: all); late interaction over 256-token documents is slow")
    r.add_argument("--progress", action="store_true")
    r.add_argument("--out", required=True)
    r.set_defaults(func=run)
    v = sub.add_parser("select")
    v.add_argument("--esco", default="../shared/data/retrieval/esco")
    v.add_argument("--unseen", default="3,6")
    v.add_argument("--max-queries", type=int, default=1000)
    v.add_argument("--scorer", default="mean")
    v.add_argument("--lrs", default="1e-4,3e-4,1e-3")
    v.add_argument("--steps", type=int, default=300)
    v.add_argument("--batch-targets", type=int, default=32)
    v.add_argument("--max-length", type=int, default=64)
    v.add_argument("--threads", type=int, default=1)
    v.add_argument("--out", required=True)
    v.set_defaults(func=select)
    m = sub.add_parser("merge")
    m.add_argument("files", nargs="+")
    m.add_argument("--out", required=True)
    m.set_defaults(func=merge)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
