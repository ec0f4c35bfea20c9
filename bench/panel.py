"""The WBS issue panel: latency from stored data, and JWT-verified requests per second next to ACE.

Issue #7: for a Box of 10,000 tasks, the panel's p95 is under 100 ms, and with its real work
included the panel keeps at least 1.5x the verified requests per second of atlassian-connect-express
(ACE, ../shared/peers/ace/) run the same way.

Setup: jirasim with 10,000 issues and BoxSync (`boxsync serve`, SQLite) in their own processes, one
Box over every project (project → Jira hierarchy), synced once.

1. Latency: `GET /api/panel/{issueId}` (what the panel's page calls: the Boxes holding the issue,
   its ancestors, siblings and children, the Box's sync status, the viewer's browse permissions,
   cached) for 400 random issues, one at a time, as the site admin with a context JWT.
2. Throughput: wrk (-t1, 16 connections) on the panel iframe `GET /panel/wbs?issueKey=…&issueId=…`
   with a signed Jira request token (query-string JWT, qsh of the URL), the same shape as ACE's
   `/panel` route: BoxSync verifies the token, reads the tenant, looks up the Boxes holding the
   issue and starts the sync of those that are not fresh (at most every 5 s per issue and process:
   Jira re-renders the panel on every view), renders the page with a session token. ACE verifies,
   reads its tenant and renders. Alternating rounds; only a ratio in one run means much. Then the
   same route over 2,000 distinct issues (random signed URLs), where most views do the lookup.

Run: `python bench/panel.py [--rounds 3] [--seconds 5] [--issues 10000]`.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from full_sync import create_box, stack, sync  # noqa: E402
from request_path import check_once, cpu_seconds, start_ace, wrk_load  # noqa: E402

from boxsync.connect.qsh import query_hash  # noqa: E402

P95_TARGET_MS = 100.0
RATIO_TARGET = 1.5


def panel_url(s, issue_id: str, issue_key: str, project_key: str) -> str:  # noqa: ANN001
    """The signed iframe URL Jira would render for the panel, valid for the whole run."""
    path = "/panel/wbs"
    params = {"issueKey": issue_key, "issueId": issue_id, "projectKey": project_key, "lic": "none",
              "cp": "", "xdm_e": s.site, "xdm_c": "channel-wbs-panel", "cv": "1001.0.0"}
    now = int(time.time())
    claims = {"iss": s.client_key, "iat": now, "exp": now + 3600, "sub": s.admin,
              "qsh": query_hash("GET", path, list(params.items()))}
    token = jwt.encode(claims, s.shared_secret, algorithm="HS256")
    return f"{s.app}{path}?{urlencode(params)}&jwt={token}"


def wrk_many(urls: list[str], workdir: Path, seconds: float, connections: int) -> tuple[float, int, int]:
    """wrk over many URLs of one server, each request a random one of them (a Lua script)."""
    base = urls[0].split("/panel/", 1)[0]
    paths = [u[len(base):] for u in urls]
    script = workdir / "many.lua"
    script.write_text("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
                      "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", str(script), base + "/"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    return rate, count, int(bad.group(1)) if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="boxsync-bench-") as tmp, stack(args.issues, Path(tmp)) as s:
        box_id = create_box(s, args.issues)
        elapsed, status, _ = sync(s, box_id)
        print(f"Box of {status['counts']['added']:,} tasks synced in {elapsed:.1f} s")
        wbs = httpx.get(f"{s.app}/api/boxes/{box_id}/wbs", headers=s.headers(), timeout=120).json()
        issues = [n for n in wbs["nodes"] if n["kind"] == "issue"]

        # 1. latency of the panel's data, from stored data
        rng = random.Random(7)
        headers = s.headers()
        with httpx.Client(timeout=30) as client:
            for node in issues[:20]:  # warm: connections, the viewer's permission cache
                client.get(f"{s.app}/api/panel/{node['issueId']}", headers=headers)
            times = []
            for node in rng.sample(issues, min(args.samples, len(issues))):
                t0 = time.perf_counter()
                resp = client.get(f"{s.app}/api/panel/{node['issueId']}", headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200 or resp.json()["node"]["issueId"] != node["issueId"]:
                    raise SystemExit(f"panel answered {resp.status_code}: {resp.text[:300]}")
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
        verdict = "PASS" if p95 < P95_TARGET_MS else "MISS"
        print(f"panel data (GET /api/panel/{{issueId}}), {len(times)} random issues of {len(issues):,}: "
              f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms   target p95 < {P95_TARGET_MS:.0f} ms: {verdict}")

        # 2. verified requests per second, side by side with ACE
        node = issues[len(issues) // 2]
        url = panel_url(s, node["issueId"], node["issueKey"], node["projectKey"])
        check_once("BoxSync", url)
        targets = {"BoxSync panel": (url, s.boxsync.pid)}
        ace = start_ace(Path(tmp))
        if ace:
            targets["ACE"] = (ace[1], ace[0].pid)
            check_once("ACE", ace[1])
        try:
            for target, _ in targets.values():
                wrk_load(target, 1, args.connections)
            rates: dict[str, list[float]] = {name: [] for name in targets}
            for n in range(1, args.rounds + 1):
                line = []
                for name, (target, pid) in targets.items():
                    profiler = None
                    if n == 1 and name == "BoxSync panel" and os.environ.get("BENCH_PROFILE"):
                        profiler = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-r", "200", "-d",
                                                     str(int(args.seconds)), "-f", "raw", "-o",
                                                     os.environ["BENCH_PROFILE"]],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    before = cpu_seconds(pid)
                    rate, count, failures = wrk_load(target, args.seconds, args.connections)
                    if failures:
                        raise SystemExit(f"{name}: {failures} failed requests")
                    rates[name].append(rate)
                    if profiler:
                        profiler.wait()
                    line.append(f"{name} {rate:6.0f} req/s ({(cpu_seconds(pid) - before) / max(count, 1) * 1e6:4.0f} us CPU/req)")
                print(f"round {n}: " + "   ".join(line), flush=True)
            if not ace:
                print("no ACE peer (see bench/request_path.py for its setup): no ratio")
                return 0 if p95 < P95_TARGET_MS else 1
            # The same route over 2,000 distinct issues, each view a different signed URL: most views
            # then look up the issue's Boxes in the database (a view checks at most every 5 s per issue).
            urls = [panel_url(s, n["issueId"], n["issueKey"], n["projectKey"]) for n in rng.sample(issues, 2000)]
            rate, count, failures = wrk_many(urls, Path(tmp), args.seconds, args.connections)
            print(f"BoxSync panel over 2,000 distinct issues: {rate:.0f} req/s ({failures} failures; "
                  f"{rate / statistics.median(rates['ACE']):.2f}x ACE's single-URL median, for reference)")
            ratios = [b / a for b, a in zip(rates["BoxSync panel"], rates["ACE"])]
            ratio = statistics.median(ratios)
            print(f"BoxSync panel / ACE: median {ratio:.2f}x (rounds {', '.join(f'{r:.2f}' for r in ratios)})   "
                  f"target >= {RATIO_TARGET}x: {'PASS' if ratio >= RATIO_TARGET else 'MISS'}")
            return 0 if p95 < P95_TARGET_MS and ratio >= RATIO_TARGET else 1
        finally:
            if ace:
                ace[0].terminate()
                ace[0].wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
