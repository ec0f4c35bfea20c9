"""Webhook delivery: one asyncio worker per site, Jira Cloud's retry policy, and injectable faults.

Jira Cloud retries when the receiver answers 408, 409, 425, 429 or 5xx, or the connection fails or
times out; other 4xx are final (connect-protocol.md §5, bigpicture-and-jira.md §3.3). Every message
carries `X-Atlassian-Webhook-Identifier` (unique per site, the same on retries and duplicates), and
retries carry `X-Atlassian-Webhook-Retry: <n>`. A message that fails its last attempt goes to the
failed list (`GET /rest/api/3/webhook/failed`).

Faults model what apps must survive: drop (never delivered), duplicate (delivered twice with one
identifier), delay, and reorder (hold a batch, then deliver it reversed or shuffled).

First attempts go out one at a time in submission order, so without faults the receiver sees
events in order and tests are deterministic; delays and retries run as their own tasks.
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

RETRYABLE = frozenset({408, 409, 425, 429})
DEFAULT_RETRY_DELAYS = (1.0, 5.0, 25.0)  # seconds before retry 1, 2, 3 (4 attempts in all)
DEFAULT_TIMEOUT = 10.0
DEFAULT_REORDER_WINDOW = 0.3  # seconds of quiet after which a held reorder batch is released
FAILED_RETENTION_MS = 72 * 3600 * 1000  # Jira keeps failed webhooks ~72 h


def retryable(status: int | None) -> bool:
    return status is None or status in RETRYABLE or status >= 500


@dataclass
class Message:
    """One webhook to one URL. `sign(url, body)` returns per-attempt auth headers (JWTs expire)."""
    url: str
    event: str
    body: bytes | None
    kind: str  # "connect" (descriptor), "dynamic" (REST-registered) or "admin"
    app_key: str | None = None
    webhook_ids: tuple[int, ...] = ()
    sign: Callable[[str, bytes | None], dict[str, str]] | None = None
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))
    retry: int = 0


@dataclass
class Faults:
    drop: float = 0  # >= 1: drop the next n messages; 0 < p < 1: drop with probability p
    duplicate: float = 0  # same convention
    delay_ms: int = 0
    reorder: bool | int | str = False  # True: reverse held batch; int: batch size; "shuffle"
    seed: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"drop": self.drop, "duplicate": self.duplicate, "delay_ms": self.delay_ms,
                "reorder": self.reorder, "seed": self.seed}


@dataclass
class Settings:
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    timeout: float = DEFAULT_TIMEOUT


def _count_or_probability(value: Any, name: str) -> float:
    if value is True:
        return 1.0 if name == "probability" else float("inf")
    if value in (None, False):
        return 0
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    raise ValueError(f"{name}: a count (>= 1), a probability (0..1) or a boolean")


class Dispatcher:
    def __init__(self) -> None:
        self.faults = Faults()
        self.settings = Settings()
        self.attempts: list[dict[str, Any]] = []  # every attempt and every drop, oldest first
        self.failed: list[dict[str, Any]] = []
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._queue: asyncio.Queue[Message] | None = None
        self._backlog: list[Message] = []  # submitted before the worker started
        self._held: list[Message] = []
        self._release_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._worker: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._worker = asyncio.create_task(self._run(), name="jirasim webhook worker")
        backlog, self._backlog = self._backlog, []
        self._pending = 0
        for message in backlog:
            self._submit(message)
        self._update_idle()

    async def stop(self) -> None:
        if self._release_timer:
            self._release_timer.cancel()
        tasks = [t for t in [self._worker, *self._tasks] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client:
            await self._client.aclose()
        self._worker, self._client, self._loop, self._queue = None, None, None, None
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
        assert self._queue is not None
        self._pending += 1
        self._update_idle()
        self._queue.put_nowait(message)

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
            seed=spec.get("seed"),
        )
        if faults.delay_ms < 0:
            raise ValueError("delay_ms must be >= 0")
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

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            message = await self._queue.get()
            if self._take("drop"):
                self._log(message, status=None, outcome="dropped")
                self._done()
                continue
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
        headers = {
            "X-Atlassian-Webhook-Identifier": message.identifier,
            "X-Atlassian-Webhook-Flow": "Primary",
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
            "retry": message.retry, "status": status, "outcome": outcome, "error": error,
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
        """Release any held reorder batch and wait until nothing is queued, delayed or retrying."""
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
