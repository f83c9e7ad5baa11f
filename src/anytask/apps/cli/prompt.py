"""``anytask prompt``: classify texts by prompting a causal LM, zero-shot (--labels) or few-shot (--data)."""

from __future__ import annotations

import json

from anytask.apps.cli.common import input_opts, jsonable, read_texts


def add_parser(sub) -> None:
    sp = sub.add_parser("prompt", help="classify texts by prompting a causal LM (zero- or few-shot, calibrated)")
    input_opts(sp, "classify")
    sp.add_argument("--labels", help="comma-separated label names, for zero-shot prompting without --data")
    sp.add_argument("--data", help="labelled .jsonl/.csv (text, label columns): the demonstrations come from it")
    sp.add_argument("--label-column", default="label")
    sp.add_argument("--k", type=int, default=None, help="demonstrations per prompt (default: 4 with --data, 0 without)")
    sp.add_argument("--template", default="Text: {text}\nLabel:", help="prompt template with {text}")
    sp.add_argument("--instruction", default="", help="a line before the demonstrations")
    sp.add_argument("--scoring", default="sum", choices=("sum", "per_token", "per_byte", "unconditional"))
    sp.add_argument("--calibration", default="contextual", choices=("contextual", "fitted", "none"))
    sp.add_argument("--backbone", default="smollm2", help="smollm2 (default), hf-causal:<folder> or tiny-causal")
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.core.errors import AnytaskError
    from anytask.data.files import read_table
    from anytask.methods.lm import LMPromptHead

    texts = read_texts(args)
    if args.data:
        train = read_table(args.data, text_column=args.text_column, label_column=args.label_column)
        pool, y = list(train.X), [str(v) for v in train.y]
    elif args.labels:
        names = [v.strip() for v in args.labels.split(",") if v.strip()]
        if len(set(names)) < 2:
            raise AnytaskError(f"--labels {args.labels!r}: give at least two different label names")
        pool, y = ["-"] * len(names), names  # names only: zero-shot (k = 0), no demonstration is ever drawn
    else:
        raise AnytaskError("give --labels a,b,... (zero-shot) or --data FILE with labelled examples (few-shot)")
    k = args.k if args.k is not None else (4 if args.data else 0)
    if not args.data and (k or args.calibration == "fitted"):
        raise AnytaskError("--k and --calibration fitted need --data: both learn from labelled examples")
    calibration = None if args.calibration == "none" else args.calibration
    head = LMPromptHead(backbone=args.backbone, k=k, template=args.template.replace("\\n", "\n"),
                        instruction=args.instruction, scoring=args.scoring, calibration=calibration, seed=args.seed)
    head.fit(pool, y)
    proba = head.predict_proba(texts)
    for text, row in zip(texts, proba):
        best = int(row.argmax())
        print(json.dumps({"text": text, "label": jsonable(head.classes_[best]),
                          "probabilities": {str(c): round(float(p), 4) for c, p in zip(head.classes_, row)}}))
