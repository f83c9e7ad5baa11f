"""Shared by the multi-task benchmarks: the 11 shared text tasks, their training samples and the layer views
(MiniLM layers 2, 4, 6, mean-pooled; the last equals the sentence embedding) of exactly the rows they use,
cached under ``benchmarks/multitask/.cache/`` (gitignored; rebuilt when missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "benchmarks" / "multitask" / ".cache"
TASKS = ["ag_news", "banking77", "dbpedia", "financial_phrasebank", "imdb", "rotten_tomatoes", "sms_spam", "sst2",
         "subj", "trec", "youtube"]
LAYERS = (2, 4, 6)


def sample(name: str, y: np.ndarray, size: str, seed: int) -> np.ndarray:
    """Training rows for one (task, size, seed): ``"64"`` = 64 random rows; ``"16pc"`` = 16 per class."""
    from anytask.data import k_shot_indices, task_seed

    if size.endswith("pc"):
        return np.asarray(k_shot_indices(y, int(size[:-2]), task_seed(name, int(size[:-2]), seed)))
    n = int(size)
    rng = np.random.default_rng(task_seed(name, n, seed))
    return np.sort(rng.choice(len(y), min(n, len(y)), replace=False))


def load(data_root: str, sizes, seeds, max_test: int = 500, progress: bool = True) -> dict:
    """``{task: {"y_train", "y_test", "views": {row: (L, D)}, "test": (n, L, D), "texts_test"}}`` for every row the
    (size, seed) draws use; views are computed once and cached."""
    import warnings

    from anytask.backbones import get_backbone, layer_embeddings
    from anytask.data import eval_indices, load_dataset

    CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in TASKS:
        train, test = load_dataset(name, data_root=data_root)
        test = test.subset(eval_indices(name, len(test), max_test))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            need = sorted({int(i) for s in sizes for seed in seeds for i in sample(name, train.y, s, seed)})
        path = CACHE / f"{name}-{'-'.join(map(str, LAYERS))}.npz"
        have = dict(np.load(path)) if path.exists() else {}
        known = dict(zip(have.get("train_idx", np.zeros(0, int)).tolist(), have.get("train_views", [])))
        missing = [i for i in need if i not in known]
        if missing or "test_views" not in have:
            backbone = get_backbone("minilm")
            if missing:
                V = layer_embeddings(backbone, [train.X[i] for i in missing], LAYERS, progress=progress)
                known.update(zip(missing, V))
            test_views = have.get("test_views")
            if test_views is None:
                test_views = layer_embeddings(backbone, list(test.X), LAYERS, progress=progress)
            idx = np.array(sorted(known))
            np.savez(path, train_idx=idx, train_views=np.stack([known[i] for i in idx.tolist()]),
                     test_views=test_views)
            have = {"test_views": test_views}
        out[name] = {"y_train": train.y, "y_test": test.y, "views": known, "test": have["test_views"]}
        if progress:
            print(f"views: {name} {len(need)} train rows, {len(test.y)} test rows", flush=True)
    return out


def task_arrays(data: dict, name: str, size: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(views (n, L, D), labels) of one training sample."""
    import warnings

    d = data[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx = sample(name, d["y_train"], size, seed)
    return np.stack([d["views"][int(i)] for i in idx]), d["y_train"][idx]


def lr_cv(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, Cs=(0.1, 1.0, 10.0, 100.0, 1000.0), folds: int = 3,
          seed: int = 0) -> np.ndarray:
    """The strongest simple baseline: logistic regression with C chosen by ``folds``-fold cross-validation on the
    training rows (plain K-fold, so classes with one example are allowed), refitted on all of them."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    order = np.random.default_rng(seed).permutation(len(y)) % folds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = []
        for C in Cs:
            acc = []
            for f in range(folds):
                tr, va = order != f, order == f
                if len(np.unique(y[tr])) < 2:
                    continue
                acc.append(np.mean(LogisticRegression(C=C, max_iter=2000).fit(X[tr], y[tr]).predict(X[va]) == y[va]))
            scores.append(np.mean(acc) if acc else 0.0)
        best = Cs[int(np.argmax(scores))]
        return LogisticRegression(C=best, max_iter=2000).fit(X, y).predict(Xt)
