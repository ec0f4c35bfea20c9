"""Real HTTP servers for tests: an ASGI app under uvicorn on a loopback port, in its own thread.

The socket is bound before the app is built, so an app that must know its own public URL (BoxSync's
base URL, a simulated Jira site's baseUrl) can be given it. Each server runs its own event loop, the
way it would in production; tests talk to it over HTTP only.

Starting and stopping uvicorn costs a few hundred milliseconds (thread, loop, its 0.1 s shutdown
polls), which a suite that serves a fresh app per test pays hundreds of times. So the servers are
pooled: `serve()` takes an idle server (or starts one), mounts a freshly built app on it and runs
that app's lifespan; on exit it waits for the app's requests to finish, runs the lifespan shutdown
and puts the server back. Every `serve()` still gets a brand-new app (no state survives from one
test to the next, in memory or in caches); only the port and the uvicorn machinery are reused.
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
import threading
import time
from typing import Any, Awaitable, Callable, Iterator

import uvicorn

TIMEOUT = 15.0


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


async def _lifespan_step(kind: str, task: asyncio.Task, inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
    await inbox.put({"type": f"lifespan.{kind}"})
    answer = asyncio.ensure_future(outbox.get())
    await asyncio.wait({answer, task}, return_when=asyncio.FIRST_COMPLETED)
    if not answer.done():  # the app returned or raised without answering
        answer.cancel()
        exc = task.exception()
        raise RuntimeError(f"app ended during lifespan {kind}") from exc
    message = answer.result()
    if message["type"] != f"lifespan.{kind}.complete":
        await asyncio.wait({task}, timeout=5)
        cause = task.exception() if task.done() else None
        raise RuntimeError(f"app lifespan {kind} failed: {message.get('message', '')}") from cause


async def start_lifespan(app: Any, state: dict) -> Callable[[], Awaitable[None]]:
    """Run an ASGI app's lifespan the way uvicorn does (one task for its whole life); return the
    coroutine function that shuts it down. A failed startup raises, with the app's error as cause."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put), name="test lifespan")
    await _lifespan_step("startup", task, inbox, outbox)

    async def shutdown() -> None:
        await _lifespan_step("shutdown", task, inbox, outbox)
        await task

    return shutdown


class _Server:
    """One uvicorn server on its own thread and loop, serving whichever app is mounted on it."""

    def __init__(self) -> None:
        self.sock = bind_loopback()
        self.url = url_of(self.sock)
        self.app: Any = None
        self.state: dict = {}
        self.in_flight = 0
        self.idle: asyncio.Event | None = None
        self.shutdown: Callable[[], Awaitable[None]] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # lifespan="off": the mounted apps' lifespans are driven by mount/unmount, not by uvicorn.
        config = uvicorn.Config(self.dispatch, interface="asgi3", lifespan="off", log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=f"uvicorn {self.url}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not (self.server.started and self.loop):
            if self.errors or not self.thread.is_alive():
                raise RuntimeError(f"server for {self.url} failed to start") from (self.errors[0] if self.errors else None)
            if time.monotonic() > deadline:
                raise TimeoutError(f"server for {self.url} did not start in {TIMEOUT:.0f} s")
            time.sleep(0.005)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.idle = asyncio.Event()
            self.idle.set()
            await self.server.serve(sockets=[self.sock])

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test by __init__
            self.errors.append(exc)

    async def dispatch(self, scope: dict, receive: Any, send: Any) -> None:
        app = self.app
        if app is None:  # between two tests: nobody is served here
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"no app is mounted on this test server"})
            return
        self.in_flight += 1
        self.idle.clear()
        try:
            await app({**scope, "state": self.state.copy()}, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _mount(self, app: Any, lifespan: bool) -> None:
        self.state = {}
        self.shutdown = await start_lifespan(app, self.state) if lifespan else None
        self.app = app

    async def _unmount(self) -> None:
        # Like uvicorn's own shutdown: stop taking requests for the app, let the running ones
        # finish, then run its lifespan shutdown.
        self.app = None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.idle.wait(), timeout=TIMEOUT)
        shutdown, self.shutdown = self.shutdown, None
        if shutdown is not None:
            await shutdown()

    def mount(self, app: Any, *, lifespan: bool) -> None:
        self.call(self._mount(app, lifespan))

    def unmount(self) -> None:
        self.call(self._unmount())

    def stop(self) -> None:
        self.server.should_exit = True


_idle: list[_Server] = []
_everyone: list[_Server] = []
_lock = threading.Lock()


def _take() -> _Server:
    with _lock:
        if _idle:
            return _idle.pop()
    server = _Server()
    with _lock:
        _everyone.append(server)
    return server


def _give_back(server: _Server) -> None:
    if server.thread.is_alive():
        with _lock:
            _idle.append(server)


@atexit.register
def _stop_all() -> None:
    for server in _everyone:
        server.stop()
    for server in _everyone:
        server.thread.join(timeout=5)


@contextlib.contextmanager
def serve(app_factory: Callable[[str], object], *, lifespan: str = "on") -> Iterator[str]:
    """Serve `app_factory(base_url)` on a loopback port; yield the base URL; stop the app on exit.

    The app runs its lifespan (startup before the first request, shutdown after the last one) unless
    lifespan="off"."""
    server = _take()
    try:
        server.mount(app_factory(server.url), lifespan=lifespan != "off")
    except BaseException:
        _give_back(server)
        raise
    try:
        yield server.url
    finally:
        try:
            server.unmount()
        finally:
            _give_back(server)
