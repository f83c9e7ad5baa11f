"""``anytask demo``: what the library does, in under two minutes on a CPU, with no data download.

1. A text task the project makes itself (six topics) is embedded once by the frozen backbone.
2. Four heads are compared at 1/2/4/8 examples per class over 3 seeds, baseline included.
3. Zero-shot: the same task with no examples at all, from the label names alone.
4. A classifier is fitted, saved as a folder, loaded back and used on new sentences.
5. scikit-learn's digits (numeric features, no backbone) through the same heads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def run_demo(out: Path, *, backbone: str = "minilm", cache_dir: str | None = None) -> dict:
    from anytask.core import io
    from anytask.backbones import Embedder, get_backbone
    from anytask.experiments import prepare_tasks, run_bench
    from anytask.experiments.report import markdown, plot
    from anytask.apps.classifier import TextClassifier
    from anytask.data import make_topic_task
    from anytask.methods.heads import create_head

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    print(f"anytask demo — backbone {backbone!r}, outputs in {out}/\n")
    bb = get_backbone(backbone)
    for p in bb.parameters():
        assert not p.requires_grad
    before = bb.weights_hash
    embedder = Embedder(bb, cache_dir=cache_dir, progress=True)

    print("1-2. Four heads on two tasks with k = 1, 2, 4, 8 labelled examples per class, 3 random draws each:\n"
          "     synthetic:topics (sentences in 6 topics the project generates, embedded by the frozen backbone) and\n"
          "     sklearn:digits (8x8 pixel images as 64 numbers, 10 classes; no backbone). Each cell below is the\n"
          "     accuracy on up to 300 held-out rows, mean ± std over the 3 draws; chance is 1/6 = 0.167 and 0.100.\n"
          "     linear_probe (logistic regression) is the baseline every method is compared with.")
    shots, seeds = [1, 2, 4, 8], [0, 1, 2]
    tasks, stats = prepare_tasks(["synthetic:topics", "sklearn:digits"], shots=shots, seeds=seeds,
                                 max_test=300, embedder=embedder, progress=False)
    results = run_bench(tasks, ["linear_probe", "centroid", "knn", "zero_shot"], shots, seeds,
                        backbone=backbone, backbone_identity=bb.identity, cache_dir=cache_dir, progress=True)
    print(markdown(results))
    from anytask.core.extras import has

    png = plot(results, out / "few_shot.png") if has("matplotlib") else "none (pip install 'anytask[plot]' for it)"
    print(f"   zero_shot needs label names, so it runs on the text task only. Plot of accuracy against k: {png}\n"
          f"   (embedded {stats['texts_embedded']} texts in {stats['embed_seconds']:.1f}s; a second run reads them "
          "from the embedding cache)\n")

    print("3. Zero-shot from label names only (no examples): each sentence goes to the topic whose name it is\n"
          "   closest to in the backbone's embedding space.")
    train, test = make_topic_task(60)
    zs = create_head("zero_shot", labels=sorted(set(train.y)), backbone=backbone, cache_dir=cache_dir).fit()
    X_test = embedder.embed(list(test.X))
    print(f"   accuracy {np.mean(zs.predict(X_test) == test.y):.3f} on {len(test)} held-out sentences "
          "(chance 0.167)\n")

    train_texts, train_labels = train.X[::10], train.y[::10]
    print(f"4. A classifier with the default head, auto, fitted on {len(train_texts)} sentences: it cross-validates a "
          "few fast heads\n   on those sentences (with the topic names as a prior), keeps the best, saves as a folder; "
          "loaded back and\n   asked about four new sentences. Columns: predicted topic, its probability "
          f"(of {len(set(train.y))} topics;\n   temperature-calibrated on the training examples), the sentence.")
    clf = TextClassifier(backbone=backbone, cache_dir=cache_dir).fit(train_texts, train_labels)
    report = clf.head_.report_
    print(f"   auto chose {report['chosen']}: {report['reason']}")
    folder = io.save(clf, out / "topic-classifier")
    loaded = io.load(folder)
    new = ["The goalkeeper saved a penalty in the last minute.", "Shares of the bank dropped after the report.",
           "Bake the bread for forty minutes at high heat.", "Our train to Rome leaves at noon."]
    print(f"   {'topic':<11} {'prob':>4}  sentence")
    for text, label, p in zip(new, loaded.predict(new), loaded.predict_proba(new).max(1)):
        print(f"   {label:<11} {p:.2f}  {text}")
    assert bb.weights_hash == before, "the backbone changed"
    print(f"\n   backbone weights unchanged (sha256 {before[:16]}…); saved folder: {folder}")
    print(f"\ndone in {time.perf_counter() - start:.1f}s")
    return results
