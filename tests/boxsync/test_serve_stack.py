"""`boxsync serve` runs on uvicorn[standard]'s uvloop event loop and httptools parser (issue #6)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.support.servers import bind_loopback


def test_serve_uses_uvloop_and_httptools(tmp_path):
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "BOXSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
           "BOXSYNC_BASE_URL": f"http://127.0.0.1:{port}", "BOXSYNC_SECRET_KEY": "B" * 43}
    proc = subprocess.Popen([sys.executable, "-m", "boxsync.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "boxsync serve did not start"
                time.sleep(0.1)
        assert resp.status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "serving with the uvloop event loop and the httptools HTTP parser" in output, output[-2000:]
    assert "GET /healthz HTTP/1.1" in output  # the access log stays on by default
