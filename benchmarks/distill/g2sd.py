"""G2SD (card 07) on MNIST: a small ViT student trained by each of the card's recipes from one shared MAE teacher per
seed — scratch, MAE alone, generic distillation only, specific (DeiT-token) distillation only, G2SD, and G2SD with
masked-only targets — against the teacher and a logistic regression on pixels, in one process per seed:

    python benchmarks/distill/g2sd.py --out benchmarks/distill/g2sd.json

Data: ``../shared/data/vision/mnist_test.npz`` split 8,000 / 2,000, stratified, seed 0 (the card's). CPU-sized
models, fixed before the run: patch 7 (16 tokens; the card's patch 4 costs ~10x more here), teacher ViT 128-d x 4
with a 128-d x 4 decoder (1,000 MAE steps, 600 fine-tuning steps), student 64-d x 4 with a 64-d x 2 decoder (1,000
pre-training steps where the recipe has them, 600 fine-tuning steps), batch 64, AdamW 1e-3, mask 75 %, teacher block
2 as the generic target.
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

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vision" / "mnist_test.npz"
VARIANTS = {"scratch": ("scratch", True), "mae": ("mae", True), "generic": ("generic", True),
            "specific": ("specific", True), "g2sd": ("g2sd", True), "g2sd masked-only": ("g2sd", False)}
TEACHER = dict(patch=7, dim=128, depth=4, dec_dim=128, dec_depth=4, pretrain_steps=1000, finetune_steps=600,
               batch_size=64)
STUDENT = dict(patch=7, dim=64, depth=4, dec_dim=64, dec_depth=2, pretrain_steps=1000, finetune_steps=600,
               batch_size=64, teacher_block=2)


def split():
    from sklearn.model_selection import train_test_split

    d = np.load(DATA)
    return train_test_split(d["images"], d["labels"], test_size=2000, stratify=d["labels"], random_state=0)


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from sklearn.linear_model import LogisticRegression

    from anytask.methods.distill.g2sd import G2SDClassifier, MAETeacher

    out = Path(spec["work"]) / f"s{spec['seed']}.json"
    if out.is_file():
        return json.loads(out.read_text())
    seed = spec["seed"]
    Xtr, Xte, ytr, yte = split()
    t = time.time()
    teacher = MAETeacher(Xtr, ytr, image=28, seed=seed, **TEACHER)
    res = {"seed": seed, "teacher": {"accuracy": float((teacher.predict(Xte) == yte).mean()),
                                     "fit_s": round(time.time() - t, 1),
                                     "parameters": sum(p.numel() for n, p in teacher.classifier.named_parameters()
                                                       if not n.startswith(("dec_", "mask_token")))},
           "students": {}}
    t = time.time()
    lr = LogisticRegression(max_iter=2000, C=0.1).fit(Xtr.reshape(len(Xtr), -1) / 255.0, ytr)
    res["logreg_pixels"] = {"accuracy": float(lr.score(Xte.reshape(len(Xte), -1) / 255.0, yte)),
                            "fit_s": round(time.time() - t, 1)}
    for name, (recipe, all_tokens) in VARIANTS.items():
        t = time.time()
        m = G2SDClassifier(recipe=recipe, teacher=teacher, supervise_all=all_tokens, seed=seed, **STUDENT)
        m.fit(Xtr, ytr)
        acc = float((m.predict(Xte) == yte).mean())
        res["students"][name] = {"accuracy": acc, "of_teacher": acc / res["teacher"]["accuracy"],
                                 "fit_s": round(time.time() - t, 1), "parameters": m.n_parameters,
                                 "final_pretrain_loss": m.pretrain_loss_[-1] if m.pretrain_loss_ else None}
        print(seed, name, round(acc, 4), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-g2sd-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "g2sd.json"))
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"{DATA} is missing: this benchmark needs the shared MNIST test images")
    t = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, [{"seed": s, "work": args.work} for s in range(args.seeds)], chunksize=1)
    summary = {}
    for name in ["teacher", "logreg_pixels"] + list(VARIANTS):
        rows = [j[name] if name in j else j["students"][name] for j in jobs]
        cell = {"n": len(rows)}
        for k in ("accuracy", "of_teacher", "fit_s", "parameters"):
            if k in rows[0]:
                cell[k], cell[k + "_sd"] = float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))
        summary[name] = cell
    result = {"benchmark": "g2sd-mnist", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "teacher_config": TEACHER, "student_config": STUDENT, "summary": summary, "jobs": jobs,
              "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
