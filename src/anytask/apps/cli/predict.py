"""``anytask predict``: labels and probabilities from a saved classifier (a score from a saved scorer)."""

from __future__ import annotations

import json

from anytask.apps.cli.common import input_opts, jsonable, read_texts


def add_parser(sub) -> None:
    sp = sub.add_parser("predict", help="predict labels with a saved classifier")
    sp.add_argument("--model", required=True, help="folder written by anytask fit")
    input_opts(sp, "classify")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.core import io

    from anytask.apps.scorer import TextScorer

    clf = io.load(args.model)
    texts = read_texts(args)
    if isinstance(clf, TextScorer):  # a score head: one number per text
        for text, score in zip(texts, clf.predict(texts)):
            print(json.dumps({"text": text, "score": round(float(score), 6)}))
        return
    proba = clf.predict_proba(texts)
    for text, p in zip(texts, proba):
        best = int(p.argmax())
        print(json.dumps({"text": text, "label": jsonable(clf.classes_[best]),
                          "probabilities": {str(c): round(float(v), 6) for c, v in zip(clf.classes_, p)}}))
