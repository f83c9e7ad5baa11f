"""LSceneLLM (card 24), the text-backed variant: dbpedia documents as regions, MiniLM token states as fine tokens.

    python benchmarks/generative/lscenellm_text.py --out benchmarks/generative/lscenellm_text.json

Protocol, fixed before the run. 3,000 dbpedia training texts (shared data; a fixed draw), each cut to its first
8 word-piece tokens after [CLS]; their frozen MiniLM token states are a document's fine tokens and their mean its
coarse token. Askable words: whole-word pieces of 4+ letters; the question is MiniLM's embedding of the word alone.
A scene is 8 documents, exactly one of which has the word among its 8 tokens; the answer is that document's
dbpedia class (14 classes). Documents are split 2,400 / 600 between training and test scenes (20,000 / 2,000 per
seed). Readers as in the toy benchmark (width 64, 3 layers, 1,000 steps of 64 scenes, lr 3e-3): coarse only,
all fine (upper bound), the magnifier from the first layer.
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

VARIANTS = {"coarse only": {"mode": "coarse"}, "all fine (upper bound)": {"mode": "all-fine"},
            "magnifier (from layer 1)": {"mode": "magnifier", "start": 0}}
FINE, DOCS, SPLIT = 8, 3000, 2400


def documents(work: Path) -> dict:
    """Token strings, token states (M, FINE, 384), labels and word vectors, computed once into ``work``."""
    cache = work / "lscene-text-docs.npz"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return {"tokens": [list(t) for t in z["tokens"]], "states": z["states"], "labels": z["labels"],
                "words": list(z["words"]), "vectors": z["vectors"], "classes": list(z["classes"])}
    import torch

    from anytask.backbones import create_backbone, get_embedder
    from anytask.data.sources import load_task, shared_data_root

    root = shared_data_root()
    if root is None or not (root / "text" / "dbpedia").is_dir():
        raise SystemExit("the text-backed variant needs ../shared/data/text/dbpedia (the shared data)")
    train, _ = load_task(root / "text", "dbpedia")
    texts, labels = list(train.X), [str(v) for v in train.y]
    rows = np.random.default_rng(0).choice(len(texts), size=min(DOCS * 2, len(texts)), replace=False)
    backbone = create_backbone("minilm")
    tokens, states, keep = [], [], []
    for i in range(0, len(rows), 64):
        batch = [texts[j] for j in rows[i:i + 64]]
        inputs, _ = backbone.tokenize(batch)
        with torch.no_grad():
            st = backbone.forward_tokens(inputs)
        for b, j in enumerate(rows[i:i + 64]):
            n = int(inputs["attention_mask"][b].sum())
            if n >= FINE + 2 and len(keep) < DOCS:
                tokens.append(backbone.tokenizer.convert_ids_to_tokens(inputs["input_ids"][b, 1:FINE + 1].tolist()))
                states.append(st[b, 1:FINE + 1].numpy())
                keep.append(j)
        if len(keep) >= DOCS:
            break
    classes = sorted(set(labels))
    y = np.array([classes.index(labels[j]) for j in keep])
    words = sorted({t for ts in tokens for t in ts if t.isalpha() and len(t) >= 4})
    vectors = np.asarray(get_embedder("minilm").embed(words), np.float32)
    np.savez(cache, tokens=np.array(tokens), states=np.stack(states), labels=y, words=np.array(words),
             vectors=vectors, classes=np.array(classes))
    return documents(work)


def job(spec: dict) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from anytask.data.scenes import text_scenes
    from anytask.methods.generative import SceneReader

    torch.set_num_threads(1)
    cache = Path(spec["work"]) / f"lscene-text-{spec['seed']}-{spec['variant'].split()[0]}-{spec['steps']}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    d = documents(Path(spec["work"]))
    wv = dict(zip(d["words"], d["vectors"]))
    tr = slice(0, SPLIT)
    te = slice(SPLIT, len(d["tokens"]))
    k = len(d["classes"])
    train = text_scenes(d["tokens"][tr], d["states"][tr], d["labels"][tr], wv, 20_000, classes=k,
                        seed=100 + spec["seed"])
    test = text_scenes(d["tokens"][te], d["states"][te], d["labels"][te], wv, 2_000, classes=k,
                       seed=900 + spec["seed"])
    t = time.perf_counter()
    reader = SceneReader(steps=spec["steps"], width=spec["width"], seed=spec["seed"],
                         **VARIANTS[spec["variant"]]).fit(train)
    res = {"variant": spec["variant"], "seed": spec["seed"], "train_s": round(time.perf_counter() - t, 1),
           **reader.report(test), "final_loss": reader.history_[-1][1],
           "majority": float(np.mean(test.answer == np.bincount(train.answer).argmax()))}
    cache.write_text(json.dumps(res))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/anytask-generative-bench")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "lscenellm_text.json"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.time()
    documents(work)
    specs = [{"variant": v, "seed": s, "steps": args.steps, "width": args.width, "work": args.work}
             for s in range(args.seeds) for v in VARIANTS]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        jobs = pool.map(job, specs, chunksize=1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lscenellm import summarise

    result = {"benchmark": "lscenellm_text", "command": " ".join(["python"] + sys.argv), "seeds": args.seeds,
              "steps": args.steps, "width": args.width, "variants": list(VARIANTS),
              "summary": summarise(jobs, VARIANTS, ("majority",)),
              "jobs": jobs, "wall_s": round(time.time() - t, 1),
              "machine": f"{platform.machine()}, {mp.cpu_count()} cores, {args.procs} processes x 1 thread",
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
