"""Concept bottleneck vs linear probe on full training sets, and how well concepts are named.

    python benchmarks/concepts/full_data.py --out benchmarks/concepts/full_data.json

Full data: each task's training texts as in the SAE pool (shuffled with seed 0, at most
8,000; imdb 2,000), test: the same ≤ 1,000 rows as ``anytask bench``. Both heads fit on the
same MiniLM embeddings in this process. Seeds do not apply (both fits are deterministic).

Naming quality (a measured proxy, as the issue asks): in each fitted bottleneck, take the 3
concepts with the largest positive weight for each class; a concept counts as well named if
its name's embedding is closer to that class's label text than to every other class's. The
hit rate is compared with chance (1 / number of classes) and with the same test applied to
3 random concepts per class.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from anytask.backbones import Embedder, get_backbone
from anytask.data import eval_indices
from anytask.data import LABEL_DESCRIPTIONS, load_task
from anytask.methods.heads import create_head
from anytask.methods.heads.zero_shot import label_text

from anytask.methods.concepts.pool import CAPS, DATA

ROOT = Path(__file__).resolve().parents[2]

TASKS = ["sst2", "rotten_tomatoes", "sms_spam", "youtube", "imdb", "ag_news", "dbpedia", "subj", "trec",
         "financial_phrasebank", "banking77"]


def naming_hits(head, concept_model, embedder, classes, descriptions, rng) -> tuple[float, float]:
    labels = embedder.embed([label_text(c, descriptions) for c in classes])
    labels /= np.linalg.norm(labels, axis=1, keepdims=True)
    W = head.coef_.numpy()
    names = concept_model.names
    hits, random_hits, n = 0, 0, 0
    for k in range(len(classes)):
        top = [i for i in np.argsort(-W[k])[:3] if W[k, i] > 0]
        rand = rng.choice(W.shape[1], size=len(top), replace=False)
        for chosen, counter in ((top, "hits"), (rand, "random")):
            if not len(chosen):
                continue
            E = embedder.embed([names[i] for i in chosen])
            E /= np.linalg.norm(E, axis=1, keepdims=True)
            wins = int(((E @ labels.T).argmax(1) == k).sum())
            if counter == "hits":
                hits += wins
                n += len(chosen)
            else:
                random_hits += wins
    return hits / max(n, 1), random_hits / max(n, 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--max-test", type=int, default=1000)
    p.add_argument("--out", default=str(ROOT / "benchmarks/concepts/full_data.json"))
    args = p.parse_args()
    embedder = Embedder(get_backbone("minilm"), progress=True)
    rng = np.random.default_rng(0)
    rows = []
    for name in TASKS:
        train, test = load_task(DATA, name)
        idx = np.random.default_rng(0).permutation(len(train))[: CAPS.get(name, 8000)]
        train = train.subset(idx)
        test = test.subset(eval_indices(name, len(test), args.max_test))
        Xtr, Xte = embedder.embed(list(train.X)), embedder.embed(list(test.X))
        row = {"task": name, "n_train": len(train), "n_test": len(test)}
        for head_name in ("linear_probe", "concept_bottleneck"):
            head = create_head(head_name, **({"backbone": "minilm"} if head_name == "concept_bottleneck" else {}))
            t0 = time.perf_counter()
            head.fit(Xtr, train.y)
            fit = time.perf_counter() - t0
            pred = head.predict(Xte)
            row[head_name] = {"accuracy": round(float(np.mean(pred == test.y)), 4),
                              "macro_f1": round(float(f1_score(test.y, pred, average="macro")), 4),
                              "fit_seconds": round(fit, 2)}
            if head_name == "concept_bottleneck":
                model = head.concept_model()
                row[head_name]["active_concepts"] = head.n_active_concepts()
                row[head_name]["weights_nonzero_per_class"] = round(float((head.coef_ != 0).sum(1).float().mean()), 1)
                hit, random_hit = naming_hits(head, model, embedder, list(head.classes_),
                                              LABEL_DESCRIPTIONS.get(name, {}), rng)
                row["naming"] = {"top3_hit_rate": round(hit, 3), "random_concepts_hit_rate": round(random_hit, 3),
                                 "chance": round(1 / len(head.classes_), 3)}
        row["gap"] = round(row["concept_bottleneck"]["accuracy"] - row["linear_probe"]["accuracy"], 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: round(float(np.mean([r[k]["accuracy"] for r in rows])), 4) for k in ("linear_probe", "concept_bottleneck")}
    naming = {k: round(float(np.mean([r["naming"][k] for r in rows])), 3)
              for k in ("top3_hit_rate", "random_concepts_hit_rate", "chance")}
    out = {"command": "python benchmarks/concepts/full_data.py " + " ".join(sys.argv[1:]),
           "mean_accuracy": mean, "mean_gap": round(mean["concept_bottleneck"] - mean["linear_probe"], 4),
           "mean_naming": naming, "tasks": rows}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "tasks"}, indent=1))


if __name__ == "__main__":
    main()
