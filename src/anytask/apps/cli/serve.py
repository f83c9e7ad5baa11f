"""``anytask serve``: the HTTP service."""

from __future__ import annotations

from anytask.apps.cli.common import backbone_opts


def add_parser(sub) -> None:
    sp = sub.add_parser("serve", help="HTTP service: many tasks on one backbone (FastAPI)")
    backbone_opts(sp)
    sp.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--home", required=True, help="folder for the task registry and heads")
    sp.add_argument("--token", default=None, help="bearer token for write endpoints (default $ANYTASK_TOKEN)")
    sp.add_argument("--read-only", action="store_true", help="serve existing tasks; refuse every change")
    sp.add_argument("--dev", action="store_true", help="local development: no token, loopback only")
    sp.add_argument("--log-format", choices=("json", "text"), default="json",
                    help="one line per request on stderr: a JSON object (default) or plain text")
    sp.set_defaults(func=run)


def run(args) -> None:
    from anytask.apps.serve import serve

    serve(host=args.host, port=args.port, home=args.home, backbone=args.backbone, token=args.token,
          read_only=args.read_only, dev=args.dev, cache_dir=args.cache_dir, quiet=args.quiet, device=args.device,
          log_format=args.log_format)
