"""Real HTTP servers for tests: an ASGI app under uvicorn on a loopback port, in its own thread.

The socket is bound before the app is built, so an app that must know its own public URL (BoxSync's
base URL, a simulated Jira site's baseUrl) can be given it. Each server runs its own event loop, the
way it would in production; tests talk to it over HTTP only.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Callable, Iterator

import uvicorn


def bind_loopback() -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # TCP, and without it every response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextlib.contextmanager
def serve(app_factory: Callable[[str], object], *, lifespan: str = "on") -> Iterator[str]:
    """Start `app_factory(base_url)` on a fresh loopback port; yield the base URL; stop on exit."""
    sock = bind_loopback()
    base_url = url_of(sock)
    app = app_factory(base_url)
    config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn {base_url}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"server for {base_url} failed to start") from (errors[0] if errors else None)
        if time.monotonic() > deadline:
            raise TimeoutError(f"server for {base_url} did not start in 15 s")
        time.sleep(0.01)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
