"""The Tensor Brain's bilayer (card 37) on a toy world perceived through frozen MiniLM: perception, episodic
recall, concept learning and semantic memory, against the flat decoder and the no-write-back ablation.

    python benchmarks/mechanisms/tensor_brain.py --out benchmarks/mechanisms/tensor_brain.json

Protocol, fixed before the run. Per seed a fresh world (50 entities, 600 training scenes of 3-6 entities, 200
test scenes of new combinations of the same entities); a scene's features are the mean MiniLM embedding of its
sentences (one per entity, one per relation). Training also holds two "glimpses" per entity (its sentence alone,
templates 0 and 1). Decoders: the bilayer (``TensorBrain``, dim 128, alpha 1), the same without write-back
(alpha 0) and ``FlatTriples`` (one logistic output per training triple); each picks its threshold on a held-out
fifth of the training scenes. Reported on the test scenes: micro precision / recall / F1 of the decoded triples,
overall and per kind (attributes; left_of; owns and part_of).
Episodic: the test scenes are memorised as time indices; the cue is one sentence of each ("A is left of B");
the hit rate of the recalled time index (with the share of cues whose pair occurs in one test scene only, the
best any lookup by the cue's facts could do), and the F1 of the recalled episode's triples against the whole
scene, next to decoding the cue alone.
Concept learning: 50 new entities (template 0) vs the known ones (template 2, never trained): AUC of the
novelty score, allocation rate by threshold for both, then after allocating at 0.5, whether the new index is
the top subject of the same entity described by template 1, and its attribute triples recalled.
Semantic memory: Spearman correlation between a training triple's frequency and its mean decoded probability
over the test states.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

NOVELTY_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KINDS = {"attributes": (0, 1, 2), "left_of": (3,), "owns / part_of": (4, 5)}


def _features(embed, groups: list[list[str]]) -> np.ndarray:
    flat = [s for g in groups for s in g]
    E, out, i = embed(flat), [], 0
    for g in groups:
        out.append(E[i:i + len(g)].mean(0))
        i += len(g)
    return np.asarray(out, dtype=np.float32)


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from anytask.backbones import get_embedder
    from anytask.data.toyworld import describe, new_scenes, novel_entities, toy_world
    from anytask.methods.mechanisms.tensor_brain import FlatTriples, TensorBrain, micro_f1

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"tensor-brain-{spec['seed']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    seed = spec["seed"]
    world = toy_world(seed=seed, n_scenes=spec["scenes"])
    test = new_scenes(world, spec["test"], np.random.default_rng(5_000 + seed))
    emb = get_embedder("minilm")
    embed = lambda texts: emb.embed(texts)  # noqa: E731
    glimpses = [(e, t) for e in range(world.n_entities) for t in (0, 1)]
    X = _features(embed, [world.sentences(s) for s in world.scenes] + [[world.entity_sentence(e, t)]
                                                                         for e, t in glimpses])
    y = [world.triples(s) for s in world.scenes] + [world.entity_triples(e) for e, _ in glimpses]
    Xte = _features(embed, [world.sentences(s) for s in test])
    yte = [world.triples(s) for s in test]
    n_c, res = len(world.concepts), {"seed": seed, "decoders": {}}
    models = {"bilayer (Tensor Brain)": TensorBrain(n_concepts=n_c, n_predicates=6, seed=seed),
              "bilayer, no write-back (alpha 0)": TensorBrain(n_concepts=n_c, n_predicates=6, alpha=0.0, seed=seed),
              "flat multi-label logistic": FlatTriples(seed=seed)}
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(X, y)
        pred = model.decode(Xte)
        row = {"fit_s": round(time.perf_counter() - t, 1), "threshold": model.threshold_,
               "all": micro_f1(pred, yte)}
        for kind, preds in KINDS.items():
            row[kind] = micro_f1([{t for t in p if t[1] in preds} for p in pred],
                                 [[t for t in ts if t[1] in preds] for ts in yte])
        res["decoders"][name] = row
        print(json.dumps({"seed": seed, "decoder": name, "f1": row["all"]["f1"]}), flush=True)
    tb = models["bilayer (Tensor Brain)"]

    # episodic memory: a relation sentence cues the whole scene
    ids = tb.memorise(Xte)
    cue_text = [next(s for s in world.sentences(sc) if " is left of " in s) for sc in test]
    cues = _features(embed, [[c] for c in cue_text])
    hit, recalled = tb.recall(cues)
    pairs = [tuple(sc[:2]) for sc in test]
    scene_pairs = [{(a, b) for a, b in zip(sc, sc[1:])} for sc in test]
    unique = [sum(p in sp for sp in scene_pairs) == 1 for p in pairs]
    res["episodic"] = {"hit_rate": float(np.mean(hit == ids)), "cue_unique_share": float(np.mean(unique)),
                       "recalled_episode": micro_f1(recalled, yte), "cue_alone": micro_f1(tb.decode(cues), yte)}

    # concept learning
    novel = novel_entities(world, 50, seed=seed)
    known = embed([world.entity_sentence(e, 2) for e in range(world.n_entities)])
    new0 = embed([describe(n, k, 0) for n, k in novel])
    new1 = embed([describe(n, k, 1) for n, k in novel])
    nk, nn_ = tb.novelty(known), tb.novelty(new0)
    known_pred = tb.decode(known)
    concept = {"novelty_auc": float(roc_auc_score([0] * len(nk) + [1] * len(nn_), np.r_[nk, nn_])),
               "allocation_rate": {str(t): {"known": float(np.mean(nk > t)), "novel": float(np.mean(nn_ > t))}
                                   for t in NOVELTY_THRESHOLDS},
               "known_attribute_recall_unseen_template": float(np.mean(
                   [len(set(world.entity_triples(e)) & known_pred[e]) / 3 for e in range(world.n_entities)]))}
    new = tb.allocate(new0, 0.5)
    got = new >= 0
    top = tb.model_.logp(tb.states(new1), tb.model_.A).exp().argmax(1).numpy()
    pred1 = tb.decode(new1)
    attrs = [len({(int(new[i]), 0, world.concept("class", k[0])), (int(new[i]), 1, world.concept("colour", k[1])),
                  (int(new[i]), 2, world.concept("size", k[2]))} & pred1[i]) / 3 for i, (_, k) in enumerate(novel)
             if got[i]]
    concept.update({"allocated_at_0.5": float(got.mean()),
                    "reidentified": float(np.mean(top[got] == new[got])) if got.any() else None,
                    "new_attribute_recall": float(np.mean(attrs)) if attrs else None})
    res["concept_learning"] = concept

    # semantic memory: decoded probability against training frequency
    counts: dict = {}
    for ts in y[:len(world.scenes)]:
        for t in ts:
            counts[tuple(t)] = counts.get(tuple(t), 0) + 1
    triples = sorted(counts)
    prob = tb.triple_probability(Xte, triples).mean(0)
    res["semantic_memory"] = {"triples": len(triples),
                              "spearman": float(spearmanr([counts[t] for t in triples], prob).statistic)}
    res = json.loads(json.dumps(res))
    cache.write_text(json.dumps(res))
    return res


def summarise(jobs: list[dict]) -> dict:
    def ms(xs):
        xs = [x for x in xs if x is not None]
        return [float(np.mean(xs)), float(np.std(xs))] if xs else None

    out = {"decoders": {}}
    for name in jobs[0]["decoders"]:
        out["decoders"][name] = {f"{k}.{m}": ms([j["decoders"][name][k][m] for j in jobs])
                                 for k in ("all", *KINDS) for m in ("precision", "recall", "f1")}
        out["decoders"][name]["fit_s"] = ms([j["decoders"][name]["fit_s"] for j in jobs])
    e = [j["episodic"] for j in jobs]
    out["episodic"] = {"hit_rate": ms([x["hit_rate"] for x in e]), "cue_unique_share": ms([x["cue_unique_share"]
                                                                                            for x in e]),
                       "recalled_episode_f1": ms([x["recalled_episode"]["f1"] for x in e]),
                       "recalled_episode_recall": ms([x["recalled_episode"]["recall"] for x in e]),
                       "cue_alone_f1": ms([x["cue_alone"]["f1"] for x in e]),
                       "cue_alone_recall": ms([x["cue_alone"]["recall"] for x in e])}
    c = [j["concept_learning"] for j in jobs]
    out["concept_learning"] = {k: ms([x[k] for x in c]) for k in (
        "novelty_auc", "known_attribute_recall_unseen_template", "allocated_at_0.5", "reidentified",
        "new_attribute_recall")}
    out["concept_learning"]["allocation_rate"] = {
        t: {who: ms([x["allocation_rate"][t][who] for x in c]) for who in ("known", "novel")}
        for t in c[0]["allocation_rate"]}
    out["semantic_memory_spearman"] = ms([j["semantic_memory"]["spearman"] for j in jobs])
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    kinds = ["all", *KINDS]
    names = list(s["decoders"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        m = [s["decoders"][name][f"{k}.f1"][0] for k in kinds]
        sd = [s["decoders"][name][f"{k}.f1"][1] for k in kinds]
        axes[0].bar(np.arange(len(kinds)) + i * width, m, width, yerr=sd, capsize=3, label=name)
    axes[0].set_xticks(np.arange(len(kinds)) + width * (len(names) - 1) / 2, kinds)
    axes[0].set_ylabel(f"micro F1 on test scenes (mean ± sd, {result['seeds']} seeds)")
    axes[0].set_title("perception: decoding a scene's triples")
    axes[0].legend(fontsize=8)
    rates = s["concept_learning"]["allocation_rate"]
    ts = sorted(rates, key=float)
    for who in ("known", "novel"):
        axes[1].errorbar([float(t) for t in ts], [rates[t][who][0] for t in ts], yerr=[rates[t][who][1] for t in ts],
                         marker="o", capsize=3, label=f"{who} entities")
    axes[1].set_xlabel("novelty threshold")
    axes[1].set_ylabel("share given a new index")
    axes[1].set_title("concept learning: threshold sensitivity")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scenes", type=int, default=600)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-tensor-brain-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "tensor_brain.json"))
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from --out")
    args = ap.parse_args()
    out = Path(args.out)
    if args.plot_only:
        return plot(json.loads(out.read_text()), out.with_suffix(".png"))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t = time.time()
    specs = [{"seed": s, "scenes": args.scenes, "test": args.test, "work": args.work} for s in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    result = {"benchmark": "tensor_brain",
              "command": " ".join(["python", "benchmarks/mechanisms/tensor_brain.py", *sys.argv[1:]]),
              "seeds": args.seeds, "summary": summarise(jobs), "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
