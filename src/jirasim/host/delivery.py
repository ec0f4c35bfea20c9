"""Webhook delivery: one asyncio worker per site, Jira Cloud's retry policy, and injectable faults.

Jira Cloud retries when the receiver answers 408, 409, 425, 429 or 5xx, or the connection fails or
times out; other 4xx are final (connect-protocol.md §5, bigpicture-and-jira.md §3.3). Every message
carries `X-Atlassian-Webhook-Identifier` (unique per site, the same on retries and duplicates), and
retries carry `X-Atlassian-Webhook-Retry: <n>`. A message that fails its last attempt goes to the
failed list (`GET /rest/api/3/webhook/failed`).

Faults model what apps must survive: drop (never delivered), duplicate (delivered twice with one
identifier), delay, reorder (hold a batch, then deliver it reversed or shuffled) and hold (park
messages, all or some events, until a test releases them in the order it chooses).

Two lanes, as Jira's `X-Atlassian-Webhook-Flow` header tells: Primary for the changes people make,
Secondary for the cascades they cause (an issue delete removing its links), which Jira delivers
later (connect-protocol.md §5). A Secondary message goes out no sooner than `secondary_delay` after
it was submitted, and only once every Primary message submitted before it had its first attempt.

First attempts on a lane go out one at a time in submission order, so without faults the receiver
sees events in order and tests are deterministic; delays and retries run as their own tasks.

The same dispatcher, with no retries, carries a site's asynchronous lifecycle callbacks
(`kind="lifecycle"`: enabled, disabled, uninstalled; see jirasim.host.connect).
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RETRYABLE = frozenset({408, 409, 425, 429})
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 25.0)  # seconds before retry 1, 2, 3 (4 attempts in all)
DEFAULT_TIMEOUT = 10.0
DEFAULT_REORDER_WINDOW = 0.3  # seconds of quiet after which a held reorder batch is released
DEFAULT_SECONDARY_DELAY = 0.1  # seconds; Jira allows itself ~15 minutes for the Secondary flow
PRIMARY, SECONDARY = "Primary", "Secondary"
RELEASE_ORDERS = ("fifo", "reverse", "shuffle")
FAILED_RETENTION_MS = 72 * 3600 * 1000  # Jira keeps failed webhooks ~72 h


def retryable(status: int | None) -> bool:
    return status is None or status in RETRYABLE or status >= 500


@dataclass
class Message:
    """One webhook to one URL. `sign(url, body)` returns per-attempt auth headers (JWTs expire)."""
    url: str
    event: str
    body: bytes | None
    kind: str  # "connect" (descriptor), "dynamic" (REST-registered), "admin", or "lifecycle"
    app_key: str | None = None
    webhook_ids: tuple[int, ...] = ()
    sign: Callable[[str, bytes | None], dict[str, str]] | None = None
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))
    retry: int = 0
    flow: str = PRIMARY  # the lane; Secondary for cascades
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class Faults:
    drop: float = 0  # >= 1: drop the next n messages; 0 < p < 1: drop with probability p
    duplicate: float = 0  # same convention
    delay_ms: int = 0
    reorder: bool | int | str = False  # True: reverse held batch; int: batch size; "shuffle"
    hold: bool | list[str] = False  # True: park every message; a list: those events only
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"drop": self.drop, "duplicate": self.duplicate, "delay_ms": self.delay_ms,
                "reorder": self.reorder, "hold": self.hold, "seed": self.seed}

    def holds(self, message: "Message") -> bool:
        return self.hold is True or (isinstance(self.hold, list) and message.event in self.hold)


@dataclass
class Settings:
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    timeout: float = DEFAULT_TIMEOUT
    secondary_delay: float = DEFAULT_SECONDARY_DELAY


def _count_or_probability(value: Any, name: str) -> float:
    if value is True:
        return 1.0 if name == "probability" else float("inf")
    if value in (None, False):
        return 0
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    raise ValueError(f"{name}: a count (>= 1), a probability (0..1) or a boolean")


class Dispatcher:
    def __init__(self, settings: Settings | None = None) -> None:
        self.faults = Faults()
        self.settings = settings or Settings()
        self.attempts: list[dict[str, Any]] = []  # every attempt and every drop, oldest first
        self.failed: list[dict[str, Any]] = []
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._queue: asyncio.Queue[Message] | None = None  # the Primary lane
        self._secondary: asyncio.Queue[Message] | None = None
        self._backlog: list[Message] = []  # submitted before the worker started
        self._held: list[Message] = []  # a reorder batch
        self._parked: list[Message] = []  # held by the `hold` fault until released
        self._release_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._worker: asyncio.Task | None = None
        self._secondary_worker: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue = asyncio.Queue()
        self._secondary = asyncio.Queue()
        self._idle = asyncio.Event()
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._worker = asyncio.create_task(self._run(self._queue), name="jirasim webhook worker")
        self._secondary_worker = asyncio.create_task(self._run(self._secondary), name="jirasim secondary worker")
        backlog, self._backlog = self._backlog, []
        self._pending = 0
        for message in backlog:
            self._submit(message)
        self._update_idle()

    async def stop(self) -> None:
        if self._release_timer:
            self._release_timer.cancel()
        tasks = [t for t in [self._worker, self._secondary_worker, *self._tasks] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client:
            await self._client.aclose()
        self._worker, self._secondary_worker, self._client, self._loop = None, None, None, None
        self._queue, self._secondary = None, None
        self._tasks.clear()

    # --- submission ------------------------------------------------------------------------------

    def submit(self, message: Message) -> None:
        """Queue a message; callable from any thread (a test may mutate a site from its own thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._backlog.append(message)
        elif threading.get_ident() == self._thread:
            self._submit(message)
        else:
            loop.call_soon_threadsafe(self._submit, message)

    def _submit(self, message: Message) -> None:
        assert self._queue is not None and self._secondary is not None
        self._pending += 1
        self._update_idle()
        (self._secondary if message.flow == SECONDARY else self._queue).put_nowait(message)

    def _done(self) -> None:
        self._pending -= 1
        self._update_idle()

    def _update_idle(self) -> None:
        if self._idle is None:
            return
        if self._pending <= 0:
            self._idle.set()
        else:
            self._idle.clear()

    # --- faults ----------------------------------------------------------------------------------

    def set_faults(self, spec: dict[str, Any]) -> Faults:
        faults = Faults(
            drop=_count_or_probability(spec.get("drop"), "drop"),
            duplicate=_count_or_probability(spec.get("duplicate"), "duplicate"),
            delay_ms=int(spec.get("delay_ms") or 0),
            reorder=spec.get("reorder", False),
            hold=spec.get("hold", False),
            seed=spec.get("seed"),
        )
        if faults.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
        if not (isinstance(faults.hold, bool)
                or (isinstance(faults.hold, list) and all(isinstance(e, str) for e in faults.hold))):
            raise ValueError("hold: true, false or a list of event names")
        if not (isinstance(faults.reorder, bool) or faults.reorder == "shuffle"
                or (isinstance(faults.reorder, int) and faults.reorder >= 1)):
            raise ValueError('reorder: true, "shuffle" or a batch size >= 1')
        self.faults = faults
        if faults.seed is not None:
            self._rng.seed(faults.seed)
        return faults

    def clear_faults(self) -> None:
        self.faults = Faults()
        self._release_held()
        self.release()

    def _take(self, name: str) -> bool:
        """Whether the drop/duplicate fault applies to this message (consuming one from a count)."""
        value = getattr(self.faults, name)
        if not value:
            return False
        if 0 < value < 1:
            return self._rng.random() < value
        setattr(self.faults, name, value - 1)
        return True

    # --- the worker ------------------------------------------------------------------------------

    async def _run(self, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            try:
                if message.flow == SECONDARY:
                    wait = message.submitted + self.settings.secondary_delay - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    assert self._queue is not None
                    await self._queue.join()  # the Primary messages submitted so far went first
                await self._process(message)
            finally:
                queue.task_done()

    async def _process(self, message: Message) -> None:
        if self.faults.holds(message):
            self._parked.append(message)
            self._log(message, status=None, outcome="held")
            self._done()  # a parked message waits for the test, not for the dispatcher
            return
        if self._take("drop"):
            self._log(message, status=None, outcome="dropped")
            self._done()
            return
        copies = [message]
        if self._take("duplicate"):
            copies.append(Message(**{**message.__dict__}))
            self._pending += 1
        for copy in copies:
            if self.faults.reorder:
                self._hold(copy)
            elif self.faults.delay_ms:
                self._spawn(self._deliver_later(copy, self.faults.delay_ms / 1000))
            else:
                await self._deliver(copy)

    def release(self, order: str = "fifo") -> int:
        """Deliver every parked message now, in submission order, reversed or shuffled."""
        if order not in RELEASE_ORDERS:
            raise ValueError(f"order: one of {', '.join(RELEASE_ORDERS)}")
        batch, self._parked = self._parked, []
        if not batch:
            return 0
        if order == "reverse":
            batch.reverse()
        elif order == "shuffle":
            self._rng.shuffle(batch)
        self._pending += len(batch)
        self._update_idle()

        async def send_all() -> None:
            for message in batch:
                await self._deliver(message)

        self._spawn(send_all())
        return len(batch)

    def _hold(self, message: Message) -> None:
        self._held.append(message)
        reorder = self.faults.reorder
        if isinstance(reorder, int) and not isinstance(reorder, bool) and len(self._held) >= reorder:
            self._release_held()
            return
        if self._release_timer:
            self._release_timer.cancel()
        assert self._loop is not None
        self._release_timer = self._loop.call_later(DEFAULT_REORDER_WINDOW, self._release_held)

    def _release_held(self) -> None:
        if self._release_timer:
            self._release_timer.cancel()
            self._release_timer = None
        batch, self._held = self._held, []
        if not batch:
            return
        if self.faults.reorder == "shuffle":
            self._rng.shuffle(batch)
        else:
            batch.reverse()
        delay = self.faults.delay_ms / 1000

        async def send_all() -> None:
            if delay:
                await asyncio.sleep(delay)
            for message in batch:
                await self._deliver(message)

        self._spawn(send_all())

    def _spawn(self, coro: Any) -> None:
        if self._loop is None:  # stopped: nothing more is delivered
            coro.close()
            return
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_later(self, message: Message, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._deliver(message)

    async def _deliver(self, message: Message) -> None:
        assert self._client is not None
        if message.kind == "lifecycle":
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
        else:
            headers = {
                "X-Atlassian-Webhook-Identifier": message.identifier,
                "X-Atlassian-Webhook-Flow": message.flow,
                "User-Agent": "Atlassian Webhook HTTP Client",
            }
            if message.body is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
            if message.retry:
                headers["X-Atlassian-Webhook-Retry"] = str(message.retry)
        if message.sign is not None:
            headers.update(message.sign(message.url, message.body))
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(message.url, content=message.body or b"", headers=headers,
                                               timeout=self.settings.timeout)
            status = response.status_code
        except httpx.TimeoutException as exc:
            error = f"timeout: {exc!r}"
        except httpx.HTTPError as exc:
            error = f"connection: {exc!r}"
        if status is not None and 200 <= status < 300:
            self._log(message, status=status, outcome="delivered")
            self._done()
        elif retryable(status) and message.retry < len(self.settings.retry_delays):
            self._log(message, status=status, outcome="retrying", error=error)
            delay = self.settings.retry_delays[message.retry]
            retry = Message(**{**message.__dict__, "retry": message.retry + 1})
            self._spawn(self._deliver_later(retry, delay))
        else:
            self._log(message, status=status, outcome="failed", error=error)
            self._fail(message)
            self._done()

    def _log(self, message: Message, *, status: int | None, outcome: str, error: str | None = None) -> None:
        self.attempts.append({
            "identifier": message.identifier, "url": message.url, "event": message.event,
            "kind": message.kind, "appKey": message.app_key, "webhookIds": list(message.webhook_ids),
            "flow": message.flow, "retry": message.retry, "status": status, "outcome": outcome, "error": error,
            "at": int(time.time() * 1000),
        })

    def _fail(self, message: Message) -> None:
        now = int(time.time() * 1000)
        self.failed = [f for f in self.failed if now - f["failureTime"] < FAILED_RETENTION_MS]
        self.failed.append({"id": message.identifier, "url": message.url, "failureTime": now,
                            "body": (message.body or b"").decode("utf-8"), "appKey": message.app_key,
                            "kind": message.kind})

    # --- waiting ---------------------------------------------------------------------------------

    async def flush(self, timeout: float = 30.0) -> bool:
        """Release any held reorder batch and wait until nothing is queued, delayed or retrying.
        Messages parked by the `hold` fault stay parked (see `held`) until `release`."""
        self._release_held()
        if self._idle is None:
            return not self._backlog
        # Let messages submitted just before the flush (call_soon_threadsafe) reach the queue.
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    @property
    def pending(self) -> int:
        return self._pending + len(self._backlog)

    @property
    def held(self) -> int:
        return len(self._parked)


# --- control routes --------------------------------------------------------------------------------


async def _json_or_none(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def dispatcher_routes(prefix: str, dispatcher: Dispatcher) -> list[Route]:
    """The control routes of one dispatcher (webhooks, or a site's lifecycle callbacks):
    {prefix}/faults, /settings, /deliveries, /flush and /release."""

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            dispatcher.clear_faults()
        elif request.method == "POST":
            body = await _json_or_none(request)
            if not isinstance(body, dict):
                return JSONResponse({"error": "JSON object required"}, status_code=400)
            try:
                dispatcher.set_faults(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": dispatcher.faults.as_json(), "held": dispatcher.held})

    async def settings(request: Request) -> Response:
        if request.method == "PUT":
            body = await _json_or_none(request)
            if not isinstance(body, dict):
                return JSONResponse({"error": "JSON object required"}, status_code=400)
            if "retry_delays_ms" in body:
                delays = body["retry_delays_ms"]
                if not isinstance(delays, list) or not all(isinstance(d, (int, float)) and d >= 0 for d in delays):
                    return JSONResponse({"error": "retry_delays_ms: list of non-negative numbers"}, status_code=400)
                dispatcher.settings.retry_delays = tuple(d / 1000 for d in delays)
            if "timeout_ms" in body:
                dispatcher.settings.timeout = float(body["timeout_ms"]) / 1000
            if "secondary_delay_ms" in body:
                delay = body["secondary_delay_ms"]
                if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
                    return JSONResponse({"error": "secondary_delay_ms: a non-negative number"}, status_code=400)
                dispatcher.settings.secondary_delay = delay / 1000
        s = dispatcher.settings
        return JSONResponse({"retry_delays_ms": [int(d * 1000) for d in s.retry_delays],
                             "timeout_ms": int(s.timeout * 1000),
                             "secondary_delay_ms": int(s.secondary_delay * 1000)})

    async def deliveries(request: Request) -> Response:
        if request.method == "DELETE":
            dispatcher.attempts.clear()
            dispatcher.failed.clear()
            return JSONResponse({"deliveries": []})
        rows = dispatcher.attempts
        for key in ("identifier", "event", "kind", "appKey", "outcome", "flow"):
            if key in request.query_params:
                rows = [r for r in rows if str(r.get(key)) == request.query_params[key]]
        return JSONResponse({"deliveries": rows, "pending": dispatcher.pending, "held": dispatcher.held,
                             "failed": dispatcher.failed})

    async def flush(request: Request) -> Response:
        body = await _json_or_none(request) if await request.body() else {}
        timeout = float((body or {}).get("timeout_ms", 30000)) / 1000
        idle = await dispatcher.flush(timeout)
        return JSONResponse({"idle": idle, "pending": dispatcher.pending, "held": dispatcher.held},
                            status_code=200 if idle else 504)

    async def release(request: Request) -> Response:
        body = await _json_or_none(request) if await request.body() else {}
        if not isinstance(body, dict):
            return JSONResponse({"error": "JSON object required"}, status_code=400)
        try:
            released = dispatcher.release(str(body.get("order", "fifo")))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"released": released})

    return [
        Route(f"{prefix}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{prefix}/settings", settings, methods=["GET", "PUT"]),
        Route(f"{prefix}/deliveries", deliveries, methods=["GET", "DELETE"]),
        Route(f"{prefix}/flush", flush, methods=["POST"]),
        Route(f"{prefix}/release", release, methods=["POST"]),
    ]
