"""``anytask embed``: embeddings through the cache, as JSON lines or an .npy file."""

from __future__ import annotations

import json
from pathlib import Path

from anytask.apps.cli.common import backbone_opts, input_opts, read_texts
from anytask.core.io import write_file_atomic


def add_parser(sub) -> None:
    sp = sub.add_parser("embed", help="embed texts with a frozen backbone")
    backbone_opts(sp)
    input_opts(sp, "embed")
    sp.add_argument("--out", help="write an (N, D) .npy file instead of JSON lines")
    sp.add_argument("--no-cache", action="store_true")
    sp.set_defaults(func=run)


def run(args) -> None:
    import numpy as np

    from anytask.backbones import Embedder, create_backbone
    from anytask.backbones.device import default_batch_size, resolve_device

    texts = read_texts(args)
    device = resolve_device(args.device)
    embedder = Embedder(create_backbone(args.backbone, device=device), cache_dir=args.cache_dir,
                        use_cache=not args.no_cache, progress=True, batch_size=default_batch_size(device))
    X = embedder.embed(texts)
    if args.out:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, X)
        write_file_atomic(Path(args.out), buf.getvalue())
        print(f"wrote {X.shape[0]} x {X.shape[1]} embeddings to {args.out}")
    else:
        for text, vec in zip(texts, X):
            print(json.dumps({"text": text, "embedding": [round(float(v), 6) for v in vec]}))
