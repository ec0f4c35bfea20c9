"""`make run`: the sandbox starts, installs BoxSync into its Jira, makes a first Box, and that Box
syncs when opened, as a newcomer would see it (a real process, its own ports and directory)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.support.servers import bind_loopback


def _port() -> int:
    sock = bind_loopback()
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def test_make_run_sandbox_starts_and_its_first_box_syncs(tmp_path):
    jira_port, app_port = _port(), _port()
    env = {**os.environ, "BOXSYNC_SANDBOX_JIRA_PORT": str(jira_port), "BOXSYNC_BASE_URL": f"http://127.0.0.1:{app_port}",
           "BOXSYNC_SANDBOX_ISSUES": "60"}
    env.pop("BOXSYNC_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "boxsync.sandbox"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    jira, app = f"http://127.0.0.1:{jira_port}", f"http://127.0.0.1:{app_port}"
    try:
        lines = []
        deadline = time.monotonic() + 120
        while not any("Requests (to BoxSync" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(proc.stdout.readline())
        out = "".join(lines)
        assert f"{jira}/browse/ALPHA-1" in out and "a first Box, 'Sandbox program', was made" in out
        token = httpx.post(f"{jira}/_jirasim/context-token", json={
            "appKey": "boxsync", "accountId": "557058:00000000-0000-4000-8000-000000000001"}).json()["token"]
        headers = {"Authorization": f"JWT {token}"}
        boxes = httpx.get(f"{app}/api/boxes", headers=headers).json()
        assert [b["name"] for b in boxes] == ["Sandbox program"]
        assert httpx.post(f"{app}/api/boxes/{boxes[0]['id']}/sync", headers=headers).status_code == 202
        while (status := httpx.get(f"{app}/api/boxes/{boxes[0]['id']}/sync", headers=headers).json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["state"] == "done" and status["counts"]["added"] == 60, status
    finally:
        proc.terminate()
        proc.wait(timeout=20)
