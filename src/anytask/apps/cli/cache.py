"""``anytask cache``: what the embedding cache holds, and making it smaller."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    sp = sub.add_parser("cache", help="embedding cache: stats, prune to a size, or clear")
    sp.add_argument("action", choices=["stats", "prune", "clear"], help="stats (default output: JSON lines), "
                    "prune (evict least-recently-used rows down to --max-mb per backbone) or clear (delete all)")
    sp.add_argument("--cache-dir", default=None, help="cache folder (default: $ANYTASK_CACHE_DIR or ~/.cache/anytask)")
    sp.add_argument("--max-mb", type=float, default=None, help="prune: megabytes to keep per backbone")
    sp.add_argument("--yes", action="store_true", help="clear: really delete every cached embedding")
    sp.set_defaults(func=run)


def run(args) -> None:
    from pathlib import Path

    from anytask.backbones.cache import cache_files, default_cache_dir, file_stats, prune_file
    from anytask.core.errors import AnytaskError

    folder = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    files = cache_files(folder)
    if args.action == "stats":
        for path in files:
            print(json.dumps(file_stats(path)))
        total = sum(p.stat().st_size for p in files)
        print(f"{len(files)} cache file(s), {total / 1e6:.1f} MB on disk in {folder}")
    elif args.action == "prune":
        if args.max_mb is None or args.max_mb < 0:
            raise AnytaskError("prune needs --max-mb N (megabytes to keep per backbone), e.g. --max-mb 500")
        dropped = sum(prune_file(p, int(args.max_mb * 1e6)) for p in files)
        print(f"evicted {dropped} least-recently-used embedding(s) from {len(files)} file(s) in {folder}")
    else:
        if not args.yes:
            raise AnytaskError(f"clear deletes every cached embedding in {folder}; pass --yes to do it")
        for path in files:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        print(f"deleted {len(files)} cache file(s) from {folder}")
