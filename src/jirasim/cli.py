"""`jirasim serve`: simulated Jira Cloud sites on consecutive ports, one uvicorn server each, all in
one event loop. Site i listens on PORT+i with base URL http://HOST:PORT+i (no context path).

Jira's rate limits (ratelimits.py) are off unless asked for, on every site alike: `--burst 10`
(calls per second per caller, endpoint and method), `--quota 100100` (points per app per hour),
`--issue-writes 1` (writes per second per issue); the control API changes them at run time."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from jirasim.model import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN
from jirasim.simulator import Simulator
from jirasim.ratelimits import RateLimits


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
    limits = serve.add_argument_group("rate limits (default: none)")
    limits.add_argument("--burst", type=float, metavar="PER_SECOND",
                        help="calls per second per caller + endpoint + method (jira-burst-based)")
    limits.add_argument("--burst-capacity", type=float, metavar="CALLS", help="burst size (default: PER_SECOND)")
    limits.add_argument("--quota", type=int, metavar="POINTS",
                        help="points per app per window (jira-quota-tenant-based)")
    limits.add_argument("--quota-window", type=float, default=3600.0, metavar="SECONDS")
    limits.add_argument("--issue-writes", type=float, metavar="PER_SECOND",
                        help="writes per second per issue (jira-per-issue-on-write)")
    return parser


def rate_limits_spec(args: argparse.Namespace) -> dict:
    """The control API's rate-limit JSON for the command-line flags."""
    spec: dict = {}
    if args.burst is not None:
        capacity = args.burst if args.burst_capacity is None else args.burst_capacity
        spec["burst"] = {"rate": args.burst, "capacity": capacity}
    elif args.burst_capacity is not None:
        raise ValueError("--burst-capacity needs --burst")
    if args.quota is not None:
        spec["quota"] = {"points": args.quota, "window": args.quota_window}
    if args.issue_writes is not None:
        spec["issueWrites"] = {"rate": args.issue_writes}
    return spec


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
        site.rate_limits.configure(rate_limits_spec(args))
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
        try:  # refuse bad limits before building any site
            RateLimits().configure(rate_limits_spec(args))
        except ValueError as exc:
            print(f"rate limits: {exc}", file=sys.stderr)
            return 2
        try:
            asyncio.run(_serve(args))
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
