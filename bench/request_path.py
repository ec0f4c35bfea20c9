"""The JWT-verified request path, side by side with atlassian-connect-express (ACE).

Issue #6: BoxSync must serve at least 1.5x the verified requests per second ACE serves on the same
route. Both run as separate processes on loopback, one process each: BoxSync as `boxsync serve`
(SQLite, the production logging setup with the access log on) with one installed tenant, and the
ACE peer from ../shared/peers/ace (set up in /tmp/ace-peer, see its README). Both are loaded with
the same Jira-style token (HS256, qsh of the request, sub = a user) on their iframe panel route,
alternating A/B a few rounds: on a shared 2-core machine only a ratio measured in the same run
means anything.

Run: `make bench` (with the other benches) or `python bench/request_path.py [--rounds N]
[--seconds S] [--connections C] [--access-log-cost]`: about a minute with the defaults. Besides
requests/s it prints the CPU time each server spent per request (from /proc), which other work on
the machine disturbs far less than throughput.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt

from boxsync import db
from boxsync.config import Settings
from boxsync.connect import tenants
from boxsync.connect.qsh import query_hash

BOUND = 1.5  # issue #6: at least 1.5x ACE's verified requests/s
ACE_DIR = Path(os.environ.get("BOXSYNC_ACE_PEER", "/tmp/ace-peer"))
SHARED = Path(os.environ.get("BOXSYNC_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
PEER_SOURCE = SHARED / "peers" / "ace"
CLIENT_KEY = "t1"
SHARED_SECRET = "bench-shared-secret-" + "x" * 44  # >= 32 characters, as ACE requires
QUERY = "issueKey=ABC-1&issueId=10001&projectKey=ABC&projectId=10000"
MAX_ROUNDS, MAX_SECONDS = 10, 30
ACE_SETUP = f"""\
  mkdir -p {ACE_DIR} && cp {PEER_SOURCE}/{{app.js,config.json,atlassian-connect.json}} {ACE_DIR}/
  cd {ACE_DIR} && npm init -y >/dev/null && \\
    npm install --no-audit --no-fund atlassian-connect-express@11.5.3 express@4 sqlite3"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token_for(path: str) -> str:
    """A Jira-style request token for GET path?QUERY, valid for the whole run."""
    now = int(time.time())
    pairs = [tuple(p.split("=", 1)) for p in QUERY.split("&")]
    claims = {"iss": CLIENT_KEY, "iat": now, "exp": now + 3600, "sub": "557058:bench-user",
              "qsh": query_hash("GET", path, pairs)}
    return jwt.encode(claims, SHARED_SECRET, algorithm="HS256")


def wait_ready(url: str, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url} within 30 s:\n{log.read_text()[-3000:]}")


async def install_tenant(database_url: str, secret_key: bytes) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            await tenants.save_installation(conn, tenants.Installation(
                client_key=CLIENT_KEY, shared_secret=SHARED_SECRET, base_url="https://bench.atlassian.net",
                display_url=None, product_type="jira"), secret_key, iat=int(time.time()))
    finally:
        await engine.dispose()


def start_boxsync(workdir: Path, *, access_log: bool) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    database_url = f"sqlite+aiosqlite:///{workdir}/boxsync-{port}.db"
    settings = Settings.from_env({"BOXSYNC_SECRET_KEY": key})
    asyncio.run(install_tenant(database_url, settings.secret_key))
    env = {**os.environ, "BOXSYNC_DATABASE_URL": database_url, "BOXSYNC_SECRET_KEY": key,
           "BOXSYNC_BASE_URL": f"http://127.0.0.1:{port}", "BOXSYNC_ENV": "development"}
    log = workdir / f"boxsync-{port}.log"
    args = [sys.executable, "-m", "boxsync.cli", "serve", "--port", str(port)]
    if not access_log:
        args.append("--no-access-log")
    proc = subprocess.Popen(args, env=env, cwd=workdir, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/healthz", proc, "boxsync serve", log)
    path = "/panel/wbs"
    return proc, f"{base}{path}?{QUERY}&jwt={token_for(path)}", log


def start_ace(workdir: Path) -> tuple[subprocess.Popen, str, Path] | None:
    if not (ACE_DIR / "node_modules" / "atlassian-connect-express").is_dir() or not shutil.which("node"):
        print(f"ACE peer: not set up in {ACE_DIR}; skipping it. To set it up:\n{ACE_SETUP}\n", flush=True)
        return None
    port = free_port()
    tenant = {"clientKey": CLIENT_KEY, "sharedSecret": SHARED_SECRET, "baseUrl": "http://127.0.0.1:1",
              "productType": "jira", "key": "ace-peer"}
    env = {**os.environ, "PORT": str(port), "NODE_ENV": "production", "ACE_TENANT": json.dumps(tenant)}
    log = workdir / "ace.log"
    proc = subprocess.Popen(["node", "app.js"], env=env, cwd=ACE_DIR, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/atlassian-connect.json", proc, "ACE peer", log)
    path = "/panel"
    return proc, f"{base}{path}?{QUERY}&jwt={token_for(path)}", log


def check_once(name: str, url: str) -> None:
    resp = httpx.get(url, timeout=10)
    if resp.status_code != 200:
        raise SystemExit(f"{name}: the verified request was answered {resp.status_code}: {resp.text[:300]}")


# -- load generators -------------------------------------------------------------------------------

def wrk_load(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    """(requests/s, requests answered, failures)"""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = int(bad.group(1)) if bad else 0
    failures += sum(int(g) for g in errors.groups()) if errors else 0
    return float(rate.group(1)), int(count.group(1)), failures


async def _httpx_load(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    ok = failures = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal ok, failures
            while time.perf_counter() < stop:
                try:
                    resp = await client.get(url)
                    ok, failures = (ok + 1, failures) if resp.status_code == 200 else (ok, failures + 1)
                except httpx.HTTPError:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return ok / (time.perf_counter() - started), ok, failures


def httpx_load(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    return asyncio.run(_httpx_load(url, seconds, connections))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the run ---------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--access-log-cost", action="store_true",
                        help="also run BoxSync with the access log off, to show what the log costs")
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx",
                        help="load generator (default: wrk when installed)")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    connections = max(1, min(args.connections, 256))

    use_wrk = args.client == "wrk"
    if use_wrk and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --client httpx")
    load = wrk_load if use_wrk else httpx_load
    client = "wrk -t1" if use_wrk else "asyncio httpx client (it limits the rate itself: install wrk for meaningful figures)"
    print(f"load generator: {client}, {connections} connections, {seconds:.0f} s per run, {rounds} rounds, "
          "loopback only", flush=True)

    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="boxsync-bench-"))
    try:
        targets: dict[str, tuple[str, int]] = {}
        proc, url, _ = start_boxsync(workdir, access_log=True)
        procs.append(proc)
        targets["BoxSync"] = (url, proc.pid)
        if args.access_log_cost:
            proc, url, _ = start_boxsync(workdir, access_log=False)
            procs.append(proc)
            targets["BoxSync (no access log)"] = (url, proc.pid)
        ace = start_ace(workdir)
        if ace:
            procs.append(ace[0])
            targets["ACE"] = (ace[1], ace[0].pid)
        for name, (url, _) in targets.items():
            assert urlsplit(url).hostname == "127.0.0.1"
            check_once(name, url)
            load(url, 1, connections)  # warm-up: imports, caches, JIT
        rates: dict[str, list[float]] = {name: [] for name in targets}
        # CPU time per answered request: steadier than req/s on a machine shared with other work.
        cpu_us: dict[str, list[float]] = {name: [] for name in targets}
        for n in range(1, rounds + 1):
            line = []
            for name, (url, pid) in targets.items():
                before = cpu_seconds(pid)
                rate, count, failures = load(url, seconds, connections)
                if failures:
                    raise SystemExit(f"{name}: {failures} failed requests in round {n}")
                rates[name].append(rate)
                cpu_us[name].append((cpu_seconds(pid) - before) / max(count, 1) * 1e6)
                line.append(f"{name} {rate:6.0f} req/s ({cpu_us[name][-1]:4.0f} us CPU/req)")
            ratio = f"   ratio {rates['BoxSync'][-1] / rates['ACE'][-1]:.2f}x" if "ACE" in rates else ""
            print(f"round {n}: " + "   ".join(line) + ratio, flush=True)
        for name, values in rates.items():
            print(f"{name:<24} median {statistics.median(values):6.0f} req/s, "
                  f"{statistics.median(cpu_us[name]):4.0f} us CPU/request  "
                  f"(runs: {', '.join(f'{v:.0f}' for v in values)})")
        if "BoxSync (no access log)" in rates:
            on, off = statistics.median(cpu_us["BoxSync"]), statistics.median(cpu_us["BoxSync (no access log)"])
            print(f"access log cost: {on - off:.0f} us CPU per request, {1 - off / on:.0%} of BoxSync's "
                  f"({off:.0f} -> {on:.0f} us)")
        if "ACE" not in rates:
            print("no ACE peer: no ratio to report")
            return 0
        ratios = [b / a for b, a in zip(rates["BoxSync"], rates["ACE"])]
        median = statistics.median(ratios)
        verdict = "within" if median >= BOUND else "SHORT OF"
        print(f"BoxSync / ACE: median {median:.2f}x (per round: {', '.join(f'{r:.2f}' for r in ratios)}); "
              f"bound >= {BOUND:.1f}x -> {verdict} the bound")
        cpu_ratio = statistics.median(cpu_us["ACE"]) / statistics.median(cpu_us["BoxSync"])
        print(f"CPU per request, ACE / BoxSync: {cpu_ratio:.2f}x")
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
