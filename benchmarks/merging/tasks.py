"""Task arithmetic on MiniLM: standard vs linearised fine-tuning, addition, negation, TIES, DARE,
weight disentanglement, aTLAS vs the best uniform lambda, and few-shot aTLAS on held-out tasks.

    python benchmarks/merging/tasks.py --data-root ../shared/data/text --seeds 3 --steps 100 --lr 5e-5 --atlas-steps 80 \\
        --tasks sst2,ag_news,trec,sms_spam,subj,dbpedia --held-out rotten_tomatoes,youtube

Per seed, for every task: fine-tune a copy of MiniLM (frozen label-name head, embeddings frozen,
batch 32, 64 tokens, the same learning rate and steps for both modes) standard and linearised on
512 training texts. Then, with accuracies on fixed test rows (the same for every model) and
every choice made on a validation split of 100 texts per task:

* zero-shot (the pre-trained model) and single-task accuracy;
* addition of all task vectors, lambda from ``GRID`` by mean validation accuracy; absolute and
  normalised (merged / single-task, per task) test accuracy, as the papers report;
* TIES (density 0.2) and DARE (density 0.5), each with its own lambda from the grid;
* negation of each task: the lambda in ``NEG_GRID`` with the lowest validation accuracy on the
  task while the control task (the next in the list) keeps >= 95 % of its zero-shot validation
  accuracy; test accuracy of both;
* weight disentanglement error (tangent task arithmetic, eq. 3) of every pair of tasks at
  alpha_1 = alpha_2 in ``DIS_ALPHAS``, on the test rows;
* aTLAS (standard vectors, one coefficient per task vector and parameter tensor, zero init,
  AdamW lr 1e-2, ``--atlas-steps`` steps of 16 texts per task) trained on the validation splits,
  against the best uniform lambda chosen on the same splits;
* few-shot aTLAS on each held-out task (no vector of it in the pool; the pool is the tasks'
  standard vectors) with k = 4/8/16 per class (lr 0.1, cosine, weight decay 0.1, 40 steps),
  against zero-shot, the best uniform lambda on the k-shot set, and logistic regression on the
  frozen embeddings of the same k-shot examples.

The result file is rewritten after every seed, so a run cut short keeps the seeds it finished.
Summary, README table and plot: ``python benchmarks/merging/summary.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression

from anytask.backbones.hf import minilm_path
from anytask.backbones.trainable import hidden_states, jvp_hidden_states, label_head, load_encoder, mean_pool
from anytask.data.sources import LABEL_DESCRIPTIONS, load_task
from anytask.methods.finetune.finetune import finetune
from anytask.methods.merging import merge_state_dicts
from anytask.methods.merging.atlas import Objective, fit_atlas

GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
NEG_GRID = (0.5, 1.0, 1.5, 2.0)
DIS_ALPHAS = (0.5, 1.0)
SHOTS = (4, 8, 16)


def subsets(data_root: Path, name: str, seed: int, n_train=512, n_val=100, n_test=200):
    train, test = load_task(data_root, name)
    classes = sorted(set(train.y))
    names = [LABEL_DESCRIPTIONS.get(name, {}).get(c, c) for c in classes]
    y_tr = np.array([classes.index(v) for v in train.y])
    y_te = np.array([classes.index(v) for v in test.y])
    tr = np.random.default_rng(seed).permutation(len(y_tr))
    te = np.random.default_rng(0).permutation(len(y_te))  # fixed evaluation rows across seeds
    pick = lambda X, idx: [X[i] for i in idx]  # noqa: E731
    return {"names": names, "train_pool": (train.X, y_tr),
            "train": (pick(train.X, tr[:n_train]), y_tr[tr[:n_train]]),
            "val": (pick(train.X, tr[n_train:n_train + n_val]), y_tr[tr[n_train:n_train + n_val]]),
            "test": (pick(test.X, te[:n_test]), y_te[te[:n_test]])}


def k_shot(pool, k: int, seed: int):
    X, y = pool
    rng = np.random.default_rng(1000 + seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c in np.unique(y)])
    return [X[i] for i in idx], y[idx]


class Evaluator:
    """The pre-trained encoder loaded once; scores any combination ``{vector name: coefficient}`` of
    the task vectors it holds on any split, standard or linearised.

    A linearised model is linear in its task vector before the pooling's normalisation, so
    ``f_lin(theta_0 + sum_v c_v tau_v) = f(theta_0) + sum_v c_v J tau_v``: one JVP per (vector, split)
    is cached and every lambda grid, negation, sum and disentanglement pair is then exact and free."""

    def __init__(self, base_dir: Path, data: dict, max_length: int = 64, batch_size: int = 100) -> None:
        self.encoder, self.tokenizer = load_encoder(base_dir)
        self.encoder.requires_grad_(False).eval()
        self.base = {n: p.detach() for n, p in self.encoder.named_parameters()}
        self.data, self.max_length, self.batch_size = data, max_length, batch_size
        self.heads = {t: label_head(self.encoder, self.tokenizer, d["names"]) for t, d in data.items()}
        self.vectors: dict[str, dict] = {}
        self._batches: dict = {}
        self._tangents: dict = {}

    def add(self, name: str, tau: dict) -> None:
        self.vectors[name] = tau
        self._tangents = {k: v for k, v in self._tangents.items() if k[0] != name}

    def batches(self, task: str, split: str):
        if (task, split) not in self._batches:
            texts = self.data[task][split][0]
            self._batches[task, split] = [self.tokenizer(texts[i:i + self.batch_size], padding=True, truncation=True,
                                                         max_length=self.max_length, return_tensors="pt")
                                          for i in range(0, len(texts), self.batch_size)]
        return self._batches[task, split]

    @torch.no_grad()
    def _forward(self, tau: dict, task: str, split: str) -> torch.Tensor:
        params = {**self.base, **{k: self.base[k] + v for k, v in tau.items()}}
        return torch.cat([mean_pool(hidden_states(self.encoder, enc, params), enc["attention_mask"])
                          for enc in self.batches(task, split)])

    @torch.no_grad()
    def _tangent(self, name: str, task: str, split: str) -> torch.Tensor:
        if (name, task, split) not in self._tangents:
            tau = self.vectors[name]
            out = []
            for enc in self.batches(task, split):
                _, tangent = jvp_hidden_states(self.encoder, enc, self.base, tau)
                out.append(mean_pool(tangent, enc["attention_mask"]))
            self._tangents[name, task, split] = torch.cat(out)
        return self._tangents[name, task, split]

    def embed(self, combo: dict, task: str, split: str, linearized: bool) -> torch.Tensor:
        combo = {n: c for n, c in combo.items() if c != 0}
        if ("", task, split) not in self._tangents:
            self._tangents["", task, split] = self._forward({}, task, split)  # f(theta_0), pooled
        if not combo:
            mean = self._tangents["", task, split]
        elif linearized:
            mean = self._tangents["", task, split] + sum(c * self._tangent(n, task, split) for n, c in combo.items())
        else:
            keys = self.vectors[next(iter(combo))]
            mean = self._forward({k: sum(c * self.vectors[n][k] for n, c in combo.items()) for k in keys}, task, split)
        return torch.nn.functional.normalize(mean, dim=-1)

    def predict(self, combo: dict, task: str, split: str, linearized: bool) -> np.ndarray:
        return (self.embed(combo, task, split, linearized) @ self.heads[task].T).argmax(1).numpy()

    def acc(self, combo: dict, task: str, split: str, linearized: bool) -> float:
        return float(np.mean(self.predict(combo, task, split, linearized) == self.data[task][split][1]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-root", default="../shared/data/text")
    ap.add_argument("--tasks", default="sst2,ag_news,trec,sms_spam,subj,dbpedia")
    ap.add_argument("--held-out", default="rotten_tomatoes,youtube")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--atlas-steps", type=int, default=80)
    ap.add_argument("--few-shot-steps", type=int, default=40)
    ap.add_argument("--out", default="benchmarks/merging/tasks.json")
    args = ap.parse_args(argv)
    tasks, held_out = args.tasks.split(","), [t for t in args.held_out.split(",") if t]
    base_dir = minilm_path()
    base_sd = load_file(str(base_dir / "model.safetensors"))
    work = Path(tempfile.mkdtemp(prefix="merge-bench-"))
    rows, start = [], time.perf_counter()

    def log(**row):
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    for seed in range(args.seeds):
        data = {t: subsets(Path(args.data_root), t, seed, n_test=500 if t in held_out else 200)
                for t in tasks + held_out}
        ev = Evaluator(base_dir, data)
        mean = lambda d: float(np.mean(list(d.values())))  # noqa: E731
        zero = {s: {t: ev.acc({}, t, s, False) for t in tasks} for s in ("val", "test")}
        log(seed=seed, kind="zero_shot", acc=zero["test"], val=zero["val"])
        for mode, lin in (("standard", False), ("linearised", True)):
            v = lambda name: f"{mode}:{name}"  # noqa: E731  vector names in the evaluator
            for t in tasks:
                out = work / f"{mode}-{t}-{seed}"
                info = finetune(base_dir, *data[t]["train"], data[t]["names"], out, linearized=lin,
                                steps=args.steps, lr=args.lr, seed=seed, progress=False)
                tuned = load_file(str(out / "model.safetensors"))
                tau = {k: tuned[k] - base_sd[k] for k in ev.base if "embeddings" not in k}
                ev.add(v(t), tau)
                shutil.rmtree(out)
                log(seed=seed, mode=mode, kind="finetune", task=t, seconds_train=info["history"][-1]["seconds"],
                    final_loss=info["history"][-1]["loss"],
                    tau_norm=float(torch.sqrt(sum((x.float() ** 2).sum() for x in tau.values()))))
            single = {t: ev.acc({v(t): 1.0}, t, "test", lin) for t in tasks}
            log(seed=seed, mode=mode, kind="single_task", acc=single)

            base_part = {k: base_sd[k] for k in ev.vectors[v(tasks[0])]}
            models = [{k: base_part[k] + ev.vectors[v(t)][k] for k in base_part} for t in tasks]
            for method, params in (("task_arithmetic", {}), ("ties", {"density": 0.2}),
                                   ("dare_linear", {"density": 0.5})):
                if method == "task_arithmetic":  # the plain sum: the evaluator combines the vectors itself
                    combo = {v(t): 1.0 for t in tasks}
                else:
                    merged = merge_state_dicts(base_part, models, method=method, scale=1.0, seed=seed, **params)
                    ev.add(v(method), {k: merged[k] - base_part[k] for k in base_part})
                    combo = {v(method): 1.0}
                at = lambda lam: {n: lam * c for n, c in combo.items()}  # noqa: E731
                val = {lam: mean({t: ev.acc(at(lam), t, "val", lin) for t in tasks}) for lam in GRID}
                best = max(GRID, key=lambda lam: val[lam])
                acc = {t: ev.acc(at(best), t, "test", lin) for t in tasks}
                kind = "addition" if method == "task_arithmetic" else method
                log(seed=seed, mode=mode, kind=kind, lam=best, acc=acc,
                    normalized={t: acc[t] / single[t] for t in tasks}, val={str(k): x for k, x in val.items()})

            for i, t in enumerate(tasks):
                control = tasks[(i + 1) % len(tasks)]
                cand = [(lam, ev.acc({v(t): -lam}, t, "val", lin), ev.acc({v(t): -lam}, control, "val", lin))
                        for lam in NEG_GRID]
                ok = [c for c in cand if c[2] >= 0.95 * zero["val"][control]] or [min(cand, key=lambda c: c[0])]
                lam = min(ok, key=lambda c: c[1])[0]
                log(seed=seed, mode=mode, kind="negation", task=t, control=control, lam=lam,
                    target_acc=ev.acc({v(t): -lam}, t, "test", lin), target_zero_shot=zero["test"][t],
                    control_acc=ev.acc({v(t): -lam}, control, "test", lin), control_zero_shot=zero["test"][control],
                    val=[list(c) for c in cand])

            alone = {(t, a): ev.predict({v(t): a}, t, "test", lin) for a in DIS_ALPHAS for t in tasks}
            for t1, t2 in itertools.combinations(tasks, 2):
                xi = {str(a): sum(float(np.mean(ev.predict({v(t1): a, v(t2): a}, t, "test", lin) != alone[t, a]))
                                  for t in (t1, t2)) for a in DIS_ALPHAS}
                log(seed=seed, mode=mode, kind="disentanglement", pair=[t1, t2], xi=xi)

        # aTLAS (standard vectors) vs the best uniform lambda, both chosen/trained on the validation splits
        pool = [ev.vectors[f"standard:{t}"] for t in tasks]
        objectives = [Objective(list(data[t]["val"][0]), list(map(int, data[t]["val"][1])), data[t]["names"])
                      for t in tasks]
        t0 = time.perf_counter()
        model, history = fit_atlas(base_dir, pool, objectives, steps=args.atlas_steps, lr=1e-2, batch_size=16,
                                   init=0.0, seed=seed)
        merged = model.merged_state()
        ev.add("atlas", {k: merged[k] - ev.base[k] for k in pool[0]})
        acc = {t: ev.acc({"atlas": 1.0}, t, "test", False) for t in tasks}
        single = next(r["acc"] for r in rows if r.get("kind") == "single_task" and r["seed"] == seed
                      and r["mode"] == "standard")
        coef = model.coef.detach()
        log(seed=seed, mode="standard", kind="atlas_addition", acc=acc, normalized={t: acc[t] / single[t] for t in tasks},
            fit_seconds=round(time.perf_counter() - t0, 1), loss_first=history[0]["loss"], loss_last=history[-1]["loss"],
            coef_mean=coef.mean(1).tolist(), coef_min=coef.min(1).values.tolist(), coef_max=coef.max(1).values.tolist())

        # few-shot aTLAS on tasks with no vector in the pool
        everything = {f"standard:{t}": 1.0 for t in tasks}
        for target in held_out:
            names = data[target]["names"]
            zs = ev.acc({}, target, "test", False)
            test_feats = ev.embed({}, target, "test", False).numpy()
            for k in SHOTS:
                texts, y = k_shot(data[target]["train_pool"], k, seed)
                ev.data[target]["shots"] = (texts, y)
                ev._batches.pop((target, "shots"), None)
                ev._tangents.pop(("", target, "shots"), None)
                at = lambda lam: {n: lam * c for n, c in everything.items()}  # noqa: E731
                uni = {lam: ev.acc(at(lam), target, "shots", False) for lam in (0.0,) + GRID}
                lam = max(uni, key=lambda a: (uni[a], -a))
                uni_acc = ev.acc(at(lam), target, "test", False)
                feats = ev.embed({}, target, "shots", False).numpy()
                probe = LogisticRegression(C=1.0, max_iter=2000).fit(feats, y)
                probe_acc = float(np.mean(probe.predict(test_feats) == data[target]["test"][1]))
                t0 = time.perf_counter()
                model, _ = fit_atlas(base_dir, pool, [Objective(list(texts), list(map(int, y)), names)],
                                     steps=args.few_shot_steps, lr=0.1, batch_size=32, init=0.0, weight_decay=0.1,
                                     cosine=True, seed=seed)
                merged = model.merged_state()
                ev.add("few_shot", {k: merged[k] - ev.base[k] for k in pool[0]})
                atlas_acc = ev.acc({"few_shot": 1.0}, target, "test", False)
                log(seed=seed, kind="few_shot_atlas", task=target, shots=k, zero_shot=zs, uniform=uni_acc,
                    uniform_lam=lam, probe=probe_acc, atlas=atlas_acc,
                    fit_seconds=round(time.perf_counter() - t0, 1))

        result = {"command": "python " + " ".join(["benchmarks/merging/tasks.py", *(argv or sys.argv[1:])]),
                  "tasks": tasks, "held_out": held_out, "seeds_done": seed + 1, "steps": args.steps, "lr": args.lr,
                  "atlas_steps": args.atlas_steps, "few_shot_steps": args.few_shot_steps, "rows": rows}
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out} ({seed + 1} seed(s)) at {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
