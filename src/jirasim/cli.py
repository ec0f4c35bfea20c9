"""`jirasim serve`: simulated Jira Cloud sites on consecutive ports, one uvicorn server each, all in
one event loop. Site i listens on PORT+i with base URL http://HOST:PORT+i (no context path)."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from jirasim.model import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN, Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jirasim", description="A simulated Jira Cloud for tests and sandboxes.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve simulated sites over HTTP")
    serve.add_argument("--port", type=int, default=2990)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--issues", type=int, default=1000, help="issues per site")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--sites", type=int, default=1)
    serve.add_argument("--admin-email", default=DEFAULT_ADMIN_EMAIL)
    serve.add_argument("--admin-token", default=DEFAULT_ADMIN_TOKEN)
    serve.add_argument("--log-level", default="warning")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    sim = Simulator(seed=args.seed)
    url_host = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    servers = []
    for i in range(args.sites):
        port = args.port + i
        base_url = f"http://{url_host}:{port}"
        started = time.perf_counter()
        app = sim.add_site(f"site{i + 1}", base_url, issues=args.issues, admin_email=args.admin_email,
                           admin_token=args.admin_token, seed=args.seed + i)
        site = sim.sites[f"site{i + 1}"]
        print(f"site{i + 1}: {base_url}  ({len(site.issues)} issues, {len(site.projects)} projects, "
              f"built in {time.perf_counter() - started:.1f}s)")
        for user in site.users.values():
            if user.api_token:
                print(f"    {user.email:<22} token {user.api_token:<22} {user.display_name}")
        config = uvicorn.Config(app, host=args.host, port=port, log_level=args.log_level, lifespan="on")
        servers.append(uvicorn.Server(config))
    print("control API: <base URL>/_jirasim/site", flush=True)
    await asyncio.gather(*(s.serve() for s in servers))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        if args.sites < 1 or args.issues < 0:
            print("--sites must be ≥ 1 and --issues ≥ 0", file=sys.stderr)
            return 2
        try:
            asyncio.run(_serve(args))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
