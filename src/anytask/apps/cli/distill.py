"""``anytask distill``: a smaller, faster student of an encoder backbone, written as a folder every command then
takes as ``--backbone hf:<folder>``: AutoDistil (SuperLM training, proxy search, optional embedding alignment) or
``--method layer_drop`` (the teacher's best few layers at full width, aligned to its embeddings) or ``--method
g2sd_text`` (the same layers, distilled on the teacher's token states of masked text)."""

from __future__ import annotations

import json
import os

from anytask.apps.cli.common import positive_int


def add_parser(sub) -> None:
    sp = sub.add_parser("distill", help="distil a smaller, faster student of an encoder (AutoDistil); use it as "
                        "--backbone hf:<out>")
    sp.add_argument("--student", default=None, help="make a named student with its recipe (minilm-l3), written "
                    "where the backbone of that name looks for it; other options default to the recipe's")
    sp.add_argument("--corpus", default=None, help="comma-separated unlabelled text: task folders of --data-root "
                    "(their train texts), .jsonl files (a \"text\" field) or .txt files (one text per line)")
    sp.add_argument("--data-root", default=os.environ.get("ANYTASK_DATA_ROOT"),
                    help="folder of <task>/train.jsonl (default: $ANYTASK_DATA_ROOT)")
    sp.add_argument("--teacher", default="minilm", help="minilm (default) or hf:<local BERT folder>")
    sp.add_argument("--method", default="autodistil", choices=["autodistil", "layer_drop", "g2sd_text"],
                    help="autodistil (default: a searched narrow sub-network), layer_drop (--layers of the "
                         "teacher's layers at full width, chosen by held-out cosine; --align-steps trains it) or "
                         "g2sd_text (the same layers, --align-steps of G2SD's generic distillation on masked text)")
    sp.add_argument("--layers", type=positive_int, default=None,
                    help="layer_drop, g2sd_text: layers the student keeps (default: half the teacher's)")
    sp.add_argument("--init", default=None,
                    help="layer_drop, g2sd_text: a student folder to train further instead of the teacher's layers "
                         "(same --corpus and --seed: the held-out texts are the first run's)")
    sp.add_argument("--masked-only", action="store_true",
                    help="g2sd_text: supervise the masked tokens only (the paper's ablation; default every token)")
    sp.add_argument("--subspace", default="tiny", choices=["tiny", "small", "both"],
                    help="student shapes searched (default tiny: 2-4 layers, 3-9 heads)")
    sp.add_argument("--steps", type=positive_int, default=300, help="SuperLM training steps (default 300)")
    sp.add_argument("--batch-size", type=positive_int, default=32)
    sp.add_argument("--max-texts", type=positive_int, default=20000, help="corpus texts used (default 20,000)")
    sp.add_argument("--held-out", type=positive_int, default=512,
                    help="corpus texts kept out of training, for the search (default 512)")
    sp.add_argument("--speedup", type=float, default=3.0,
                    help="search only students with at most 1/SPEEDUP of the teacher's FLOPs (default 3)")
    sp.add_argument("--align-steps", type=int, default=None,
                    help="steps aligning the student's embeddings to the teacher's (0: relation distillation "
                         "only; default 300)")
    sp.add_argument("--out", default=None, help="the student folder to write (replaced atomically); with --student, "
                    "default: where that backbone name looks")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--checkpoint", default=None, help="write the SuperLM's training state here every 50 steps; "
                    "rerunning the same command resumes from it")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.core.errors import AnytaskError
    from anytask.methods.distill import DISTILLERS, corpus_texts

    if args.student is not None:
        from anytask.backbones.hf import STUDENTS, student_path

        if args.student not in STUDENTS:
            raise AnytaskError(f"no recipe for a student named {args.student!r}; known: {', '.join(STUDENTS)}")
        recipe = STUDENTS[args.student]
        args.method, args.teacher = recipe["method"], recipe["teacher"]
        args.layers = args.layers or recipe.get("layers")
        args.corpus = args.corpus or recipe["corpus"]
        args.align_steps = recipe["align_steps"] if args.align_steps is None else args.align_steps
        args.out = args.out or str(student_path(args.student))
    if args.align_steps is None:
        args.align_steps = 300
    if not args.corpus or not args.out:
        raise AnytaskError("give --corpus (unlabelled texts) and --out (the student folder), or --student NAME")

    texts = corpus_texts(args.corpus.split(","), data_root=args.data_root, limit=args.max_texts + args.held_out,
                         seed=args.seed)
    if len(texts) <= args.held_out + args.batch_size:
        raise AnytaskError(f"the corpus has {len(texts)} texts: too few for --held-out {args.held_out} plus one "
                           f"batch of {args.batch_size}; add texts or lower --held-out")
    if args.method in ("layer_drop", "g2sd_text"):
        extra = {"supervise_all": not args.masked_only} if args.method == "g2sd_text" else {}
        ld = DISTILLERS.get(args.method)(**extra, teacher=args.teacher, layers=args.layers, steps=args.align_steps,
                                          batch_size=args.batch_size, held_out=args.held_out, seed=args.seed,
                                          progress=not args.quiet, init=args.init).fit(texts)
        folder = ld.save_student(args.out)
        print(json.dumps({"student": str(folder), "backbone": f"hf:{folder}", "keep": ld.keep_,
                          "held_out_cosine": round(ld.held_out_cosine_, 5),
                          "candidates": ld.candidates_[:5]}))
        return
    held, train = texts[:args.held_out], texts[args.held_out:]
    ad = DISTILLERS.get("autodistil")(teacher=args.teacher, subspace=args.subspace, steps=args.steps,
                                      batch_size=args.batch_size, seed=args.seed, progress=not args.quiet,
                                      checkpoint=args.checkpoint).fit(train)
    from anytask.backbones.superlm import SubNet

    teacher_flops = ad.flops(SubNet(ad.superlm_.n_layers, ad.superlm_.n_heads, ad.superlm_.ffn_max))
    ranking = ad.search(held, max_flops=int(teacher_flops / args.speedup))
    folder = ad.save_student(args.out, align_steps=args.align_steps, texts=train)
    best = ranking[0]
    print(json.dumps({"student": str(folder), "backbone": f"hf:{folder}", **ad.best_.as_dict(),
                      "flops_vs_teacher": round(best["flops"] / teacher_flops, 4), "parameters": best["parameters"],
                      "held_out_relation_loss": round(best["relation_loss"], 5), "candidates": len(ranking)}))
