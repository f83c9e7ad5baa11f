"""AutoDistil's claims at MiniLM scale: does the held-out relation loss rank sub-networks the way downstream
accuracy does, and does one SuperLM per sub-space beat one SuperLM for everything?

    python benchmarks/distill/autodistil.py --out benchmarks/distill/autodistil.json

Corpus: the train texts of the 11 shared tasks (unlabelled, deduplicated, shuffled with seed 0): 20,000 for
training, 512 held out for the search. Per SuperLM (``--subspaces``: ``tiny``, ``small`` and the one-SuperLM
ablation ``both``, which spans both ranges): ``--steps`` sandwich-rule steps of relation distillation from
MiniLM-L6, then every sub-network of its space (``both``: of the tiny space, to compare with the tiny SuperLM)
is scored twice, without retraining: its held-out relation loss (the proxy), and frozen
linear-probe accuracy of its mean-pooled embeddings (64 labelled examples per class, seeds 0-2, the first 500
test rows) on SST-2 and TREC — a frozen probe, not the paper's fine-tuning, because anytask uses backbones
frozen. Reported: Spearman correlation between proxy and accuracy over the 27 sub-networks, per SuperLM; the
tiny sub-networks' loss and accuracy under one SuperLM per sub-space and under one for both; the teacher's
accuracy on the same draws.

Sub-spaces may come in separate runs (``--subspaces tiny``, then ``both``, then ``small``): each run adds its
SuperLMs to the result. ``<space>@<steps>`` trains that SuperLM for other than ``--steps`` steps: ``tiny@0``
scores the plain slices of the teacher, the control for what relation distillation adds. Then (when the tiny
SuperLM is in this run) the students for ``frontier.py`` (folders under ``benchmarks/distill/students/``, not
committed): the best-ranked tiny sub-network within a third of the teacher's FLOPs, aligned to the teacher's
embeddings (``--align-steps``) and not; the same shape from scratch, aligned the same way (the control); and five
random sub-networks within the same budget, aligned (the first two as in the first run: the draw is seeded); and
(when ``tiny@0`` is in the run) the pick's shape as a plain slice of the untrained SuperLM, aligned the same way:
does the relation stage help the aligned student? Stages are recorded in ``<out>.state.json`` as they finish and
skipped on a rerun; a finished SuperLM is trained again only when a missing student needs its weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["ag_news", "banking77", "dbpedia", "financial_phrasebank", "imdb", "rotten_tomatoes", "sms_spam", "sst2",
         "subj", "trec", "youtube"]
PROBE_TASKS = ["sst2", "trec"]
STUDENTS = ROOT / "benchmarks" / "distill" / "students"
N_RANDOM = 5  # random sub-networks within the budget, aligned, for the frontier


def probe_accuracy(backbone_name: str, data_root: str, seeds=(0, 1, 2), shots: int = 64) -> dict:
    from anytask.backbones import get_embedder
    from anytask.experiments.runner import run_bench
    from anytask.experiments.tasks import prepare_tasks

    embedder = get_embedder(backbone_name, use_cache=False)
    tasks, _ = prepare_tasks(PROBE_TASKS, data_root=data_root, shots=[shots], seeds=list(seeds), max_test=500,
                             embedder=embedder, progress=False)
    bench = run_bench(tasks, [], [shots], list(seeds), backbone=backbone_name, progress=False)
    per_task = {t: float(np.mean([r["accuracy"] for r in bench["results"] if r["task"] == t])) for t in PROBE_TASKS}
    return {"per_task": per_task, "mean": float(np.mean(list(per_task.values())))}


def subnet_accuracy(ad, shape, data_root: str) -> dict:
    """Frozen linear-probe accuracy of one sub-network (extracted, not aligned)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = ad.save_student(Path(tmp) / "s", shape=shape)
        return probe_accuracy(f"hf:{folder}", data_root)


def student_plan(state: dict, teacher_flops: int) -> list:
    """The best-ranked tiny net within a third of the teacher's FLOPs (aligned and not), the same shape from
    scratch, and five random nets within the budget (drawn so that the first two are the first run's)."""
    budget = [r for r in state["superlm:tiny"]["rows"] if r["flops"] <= teacher_flops / 3]
    best = min(budget, key=lambda r: r["relation_loss"])
    others = random.Random(0).sample([r for r in budget if r is not best], N_RANDOM)
    return [("autodistil", best, {"align": True}), ("autodistil-unaligned", best, {"align": False}),
            ("scratch", best, {"align": True, "scratch": True}),
            *((f"random-{i + 1}", row, {"align": True}) for i, row in enumerate(others)),
            ("slice-aligned", best, {"align": True, "superlm": "tiny@0"})]  # the pick's shape, no relation stage


def plot(result: dict, path: Path) -> None:
    """Held-out relation loss against frozen-probe accuracy, one point per scored sub-network, per SuperLM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in result if k.startswith("superlm:")]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for k, colour in zip(keys, ("#3b7dd8", "#d8703b", "#3bab5c", "#888888")):
        rows = result[k]["rows"]
        ax.scatter([r["relation_loss"] for r in rows], [r["accuracy"] for r in rows],
                   s=[r["flops"] / 1e7 for r in rows], alpha=0.7, color=colour,
                   label=f"{k.split(':')[1]} SuperLM, {result[k].get('scored_space', 'tiny')} nets "
                         f"(Spearman {result[k]['spearman']:+.2f})")
    ax.axhline(result["teacher"]["mean"], color="#999", ls="--", label="teacher")
    ax.set_xlabel("held-out relation loss (the proxy; lower is better)")
    ax.set_ylabel("frozen linear-probe accuracy, SST-2 + TREC")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "text"))
    p.add_argument("--subspaces", default="tiny,both,small")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--align-steps", type=int, default=300)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from anytask.backbones.superlm import SubNet
    from anytask.methods.distill import DISTILLERS, corpus_texts

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    state_path = out.with_suffix(".state.json")
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}

    def save_state():
        state_path.write_text(json.dumps(state, indent=1) + "\n")

    texts = corpus_texts(TASKS, data_root=args.data_root, limit=20512, seed=0)
    held, train = texts[:512], texts[512:]
    if "teacher" not in state:
        state["teacher"] = probe_accuracy("minilm", args.data_root)
        save_state()
    teacher_flops = 2 * 6 * (64 * (4 * 384 * 384 + 2 * 384 * 1536) + 2 * 64 * 64 * 384)  # AutoDistil.flops

    def missing_students() -> list:
        if "superlm:tiny" not in state:
            return []
        return [p for p in student_plan(state, teacher_flops) if p[0] not in state.get("students", {})]

    models = {}
    for subspace in args.subspaces.split(","):
        key = f"superlm:{subspace}"
        if key in state and not any(how.get("superlm", "tiny") == subspace for _, _, how in missing_students()):
            continue  # finished, and no student needs its weights
        subspace, _, steps = subspace.partition("@")  # tiny@0: the untrained SuperLM (plain slices), a control
        steps = int(steps) if steps else args.steps
        ad = DISTILLERS.get("autodistil")(subspace=subspace, steps=steps, max_length=args.max_length, seed=0)
        start = time.perf_counter()
        ad.fit(train)
        fit_s = time.perf_counter() - start
        models[key.split(":")[1]] = ad
        if key in state:  # refit for students only: is it the SuperLM that was scored? (threads can differ)
            best = min(state[key]["rows"], key=lambda r: r["relation_loss"])
            again = ad.relation_loss(held, [SubNet(best["layers"], best["heads"], best["ffn"])])[0]
            state[key].setdefault("refits", []).append({"net": {k: best[k] for k in ("layers", "heads", "ffn")},
                                                        "scored_loss": best["relation_loss"], "refit_loss": again,
                                                        "threads": args.threads})
            continue
        scored = "small" if subspace == "small" else "tiny"  # the one-SuperLM ablation is scored on the tiny nets
        view = DISTILLERS.get("autodistil")(subspace=scored)
        view.superlm_ = ad.superlm_
        shapes = view.space()
        losses = ad.relation_loss(held, shapes)
        rows = []
        for shape, loss in zip(shapes, losses):
            acc = subnet_accuracy(ad, shape, args.data_root)
            rows.append({**shape.as_dict(), "flops": ad.flops(shape), "parameters": ad.n_parameters(shape),
                         "relation_loss": loss, "accuracy": acc["mean"], "per_task": acc["per_task"]})
            print(json.dumps({"superlm": key.split(":")[1], **rows[-1]}), flush=True)  # tiny@0, not tiny
        rho = spearmanr([-r["relation_loss"] for r in rows], [r["accuracy"] for r in rows]).statistic
        state[key] = {"fit_seconds": fit_s, "history": ad.history_, "rows": rows, "spearman": float(rho),
                      "scored_space": scored}
        save_state()

    state.setdefault("students", {})
    for name, row, how in missing_students():
        ad = models.get(how.get("superlm", "tiny"))
        if ad is None:
            continue  # its SuperLM is not in this run
        folder = STUDENTS / name
        shape = SubNet(row["layers"], row["heads"], row["ffn"])
        if how.get("scratch"):
            from anytask.backbones.superlm import align_to_teacher
            from anytask.methods.distill.base import write_student

            model = ad.superlm_.extract(shape, scratch=True, seed=0)
            dense = align_to_teacher(model, ad.teacher_backbone_, train, steps=args.align_steps, seed=0)
            write_student(folder, model, ad.teacher_folder_, max_length=ad.teacher_backbone_.config.max_length,
                          card=f"# scratch control: {shape.as_dict()}, aligned {args.align_steps} steps\n",
                          dense=dense)
        else:
            ad.save_student(folder, shape=shape, align_steps=args.align_steps if how["align"] else 0, texts=train)
        state["students"][name] = {"folder": str(folder.relative_to(ROOT)), **shape.as_dict(),
                                   "flops_vs_teacher": row["flops"] / teacher_flops, "aligned": how["align"],
                                   "init": "scratch" if how.get("scratch") else
                                   "plain slice of the teacher (untrained SuperLM)" if how.get("superlm") == "tiny@0"
                                   else "SuperLM slice"}
        save_state()

    command = "python " + " ".join(["benchmarks/distill/autodistil.py", *(argv or sys.argv[1:])])
    previous = json.loads(out.read_text()).get("command", "").splitlines() if out.is_file() else []
    result = {"command": "\n".join(previous + [command] if command not in previous else previous),
              "args": vars(args), "corpus": {"train": len(train), "held_out": len(held), "tasks": TASKS},
              "probe_tasks": PROBE_TASKS, "teacher_flops": teacher_flops, **state,
              "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                              "torch": torch.__version__, "torch_threads": args.threads,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
