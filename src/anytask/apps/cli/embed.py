"""``anytask embed``: embeddings through the cache, as JSON lines, an .npy file or a Parquet file; on one
process or sharded across a Ray cluster (``--ray``), with the same output either way."""

from __future__ import annotations

import json
from pathlib import Path

from anytask.apps.cli.common import backbone_opts, input_opts, positive_int, read_texts
from anytask.core.errors import AnytaskError
from anytask.core.io import write_file_atomic


def add_parser(sub) -> None:
    sp = sub.add_parser("embed", help="embed texts with a frozen backbone")
    backbone_opts(sp)
    input_opts(sp, "embed")
    sp.add_argument("--out", help="write an (N, D) .npy file, or a .parquet file (text, embedding), instead of JSON "
                    "lines")
    sp.add_argument("--no-cache", action="store_true")
    sp.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="embed on a Ray cluster: its address (ray://host:10001 or auto), or none for a local one "
                    "(pip install 'anytask[ray]')")
    sp.add_argument("--workers", type=positive_int, default=None,
                    help="with --ray: backbone workers (default: one per CPU, or per GPU when the cluster has GPUs)")
    sp.set_defaults(func=run)


def run(args) -> None:
    import numpy as np

    texts = read_texts(args)
    if args.out and Path(args.out).suffix.lower() not in (".npy", ".parquet"):
        raise AnytaskError(f"--out {args.out}: use a .npy or a .parquet file name")
    if args.ray:
        from anytask.experiments.distributed import RayEmbedder

        embedder = RayEmbedder(args.backbone, address=None if args.ray == "local" else args.ray,
                               workers=args.workers, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                               device=args.device, progress=True)
    else:
        from anytask.backbones import Embedder, create_backbone
        from anytask.backbones.device import default_batch_size, resolve_device

        device = resolve_device(args.device)
        embedder = Embedder(create_backbone(args.backbone, device=device), cache_dir=args.cache_dir,
                            use_cache=not args.no_cache, progress=True, batch_size=default_batch_size(device))
    X = embedder.embed(texts)
    if args.out and args.out.lower().endswith(".parquet"):
        from anytask.experiments.distributed import write_parquet

        write_parquet(Path(args.out), texts, X)
        print(f"wrote {X.shape[0]} x {X.shape[1]} embeddings to {args.out}")
    elif args.out:
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, X)
        write_file_atomic(Path(args.out), buf.getvalue())
        print(f"wrote {X.shape[0]} x {X.shape[1]} embeddings to {args.out}")
    else:
        for text, vec in zip(texts, X):
            print(json.dumps({"text": text, "embedding": [round(float(v), 6) for v in vec]}))
