"""``anytask explain``: a prediction and the named concepts behind it."""

from __future__ import annotations

import json
import sys

from anytask.apps.cli.common import input_opts, jsonable, read_texts
from anytask.core.errors import AnytaskError


def add_parser(sub) -> None:
    sp = sub.add_parser("explain", help="prediction plus the named concepts behind it (concept_bottleneck)")
    sp.add_argument("--model", required=True, help="folder written by anytask fit --head concept_bottleneck")
    input_opts(sp, "explain")
    sp.add_argument("--top", type=int, default=5, help="concepts per prediction")
    sp.add_argument("--html", help="also write concept cards to this HTML file")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.apps.classifier import TextClassifier
    from anytask.core import io
    from anytask.methods.concepts.bottleneck import ConceptBottleneck

    clf = io.load(args.model)
    head = clf.head_ if isinstance(clf, TextClassifier) else None
    if not isinstance(head, ConceptBottleneck):
        raise AnytaskError(f"{args.model} is not a concept-bottleneck classifier; fit one with "
                           "anytask fit --head concept_bottleneck")
    texts = read_texts(args)
    explanations = head.explain(clf.embed(texts), top=args.top)
    for text, e in zip(texts, explanations):
        print(json.dumps({"text": text, "label": jsonable(e.label), "probability": round(e.probability, 4),
                          "concepts": [{"name": c.name, "index": c.index, "contribution": round(c.contribution, 4),
                                        "activation": round(c.activation, 4), "weight": round(c.weight, 4)}
                                       for c in e.concepts]}))
    if args.html:
        from anytask.methods.concepts.report import explanation_html, write_html

        page = explanation_html(texts, explanations, head.concept_model(), title=f"anytask explain: {args.model}")
        print(f"wrote {write_html(args.html, page)}", file=sys.stderr)
