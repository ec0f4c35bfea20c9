"""`jirasim serve` as a user runs it: a subprocess, sites on consecutive ports, credentials printed."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair")


def test_serve_two_sites() -> None:
    port = free_port_pair()
    proc = subprocess.Popen([sys.executable, "-m", "jirasim.cli", "serve", "--port", str(port), "--issues", "40",
                             "--sites", "2", "--seed", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "control API" in line or not line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}" in out and f"http://127.0.0.1:{port + 1}" in out, out
        assert "admin@example.com" in out and "jirasim-admin-token" in out
        for p in (port, port + 1):
            for _ in range(100):
                try:
                    r = httpx.get(f"http://127.0.0.1:{p}/rest/api/3/serverInfo", timeout=2)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert r.status_code == 200 and r.json()["baseUrl"] == f"http://127.0.0.1:{p}"
            r = httpx.post(f"http://127.0.0.1:{p}/rest/api/3/search/approximate-count", json={"jql": "project = ALPHA"},
                           auth=("admin@example.com", "jirasim-admin-token"))
            assert r.json()["count"] == 20
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_bad_arguments() -> None:
    result = subprocess.run([sys.executable, "-m", "jirasim.cli", "serve", "--sites", "0"], capture_output=True, text=True)
    assert result.returncode == 2
