"""The test servers (tests/support/servers.py): every `serve()` gets a fresh app with its own
lifespan, on a pooled uvicorn server that is started once and reused."""
from __future__ import annotations

import asyncio
import contextlib
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.servers import serve


def app_named(name: str, events: list[str], *, fail: bool = False, started: threading.Event | None = None,
              release: threading.Event | None = None):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if fail:
            raise RuntimeError(f"{name} cannot reach its database")
        events.append(f"{name} startup")
        yield {"name": name}
        events.append(f"{name} shutdown")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.state.name} at {request.url.netloc}")

    async def slow(request: Request) -> PlainTextResponse:
        started.set()
        await asyncio.to_thread(release.wait, 10)
        events.append(f"{name} answered")
        return PlainTextResponse("done")

    return lambda url: Starlette(routes=[Route("/", hello), Route("/slow", slow)], lifespan=lifespan)


def test_each_serve_gets_a_fresh_app_on_a_reused_server():
    events: list[str] = []
    with serve(app_named("one", events)) as first:
        assert events == ["one startup"]
        assert httpx.get(first).text == f"one at {first[len('http://'):]}"
    assert events == ["one startup", "one shutdown"]
    # Nothing answers for the old app once its block is left.
    assert httpx.get(first).status_code == 503
    with serve(app_named("two", events)) as second:
        assert httpx.get(second).text.startswith("two at ")
    # The same uvicorn server (same port) served both: no start or stop in between.
    assert second == first
    assert events == ["one startup", "one shutdown", "two startup", "two shutdown"]


def test_requests_in_flight_finish_before_the_lifespan_shuts_down():
    events: list[str] = []
    started, release = threading.Event(), threading.Event()
    answers: list[httpx.Response] = []
    with serve(app_named("app", events, started=started, release=release)) as url:
        caller = threading.Thread(target=lambda: answers.append(httpx.get(url + "/slow", timeout=30)))
        caller.start()
        assert started.wait(10)
        threading.Timer(0.2, release.set).start()
    caller.join(10)
    assert answers and answers[0].text == "done"
    assert events == ["app startup", "app answered", "app shutdown"]


def test_a_failed_startup_raises_the_apps_error_and_leaves_the_server_usable():
    events: list[str] = []
    with pytest.raises(RuntimeError, match="lifespan startup failed") as info:
        with serve(app_named("broken", events, fail=True)):
            pytest.fail("the block must not run")
    assert "cannot reach its database" in str(info.value.__cause__)
    with serve(app_named("next", events)) as url:
        assert httpx.get(url).text.startswith("next at ")
