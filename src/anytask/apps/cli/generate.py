"""``anytask generate``: continue a prompt with a causal LM (greedy, beam or sampled), for quick checks."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    sp = sub.add_parser("generate", help="continue a prompt with a causal language model (smollm2)")
    sp.add_argument("prompt", help="the text to continue")
    sp.add_argument("--backbone", default="smollm2", help="smollm2 (default), hf-causal:<folder> or tiny-causal")
    sp.add_argument("--chat", action="store_true", help="send the prompt as a user turn in the model's chat template")
    sp.add_argument("--method", default="greedy", choices=("greedy", "beam", "sample"))
    sp.add_argument("--max-new-tokens", type=int, default=48)
    sp.add_argument("--beams", type=int, default=4, help="beam width for --method beam")
    sp.add_argument("--temperature", type=float, default=0.8, help="for --method sample")
    sp.add_argument("--top-p", type=float, default=0.95, help="for --method sample")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true", help="print a JSON object with the prompt and the settings")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.backbones import create_backbone, is_causal
    from anytask.core.errors import AnytaskError

    if args.max_new_tokens < 1:
        raise AnytaskError(f"--max-new-tokens {args.max_new_tokens}: give at least 1")
    lm = create_backbone(args.backbone)
    if not is_causal(lm):
        raise AnytaskError(f"{args.backbone!r} is an encoder and cannot generate; use --backbone smollm2")
    prompt = lm.chat_prompt(args.prompt) if args.chat else args.prompt
    text = lm.generate(prompt, max_new_tokens=args.max_new_tokens, method=args.method, num_beams=args.beams,
                       temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    if args.json:
        print(json.dumps({"backbone": args.backbone, "method": args.method, "prompt": args.prompt, "chat": args.chat,
                          "output": text}))
    else:
        print(text)
