"""Headers every response carries, whichever route (or error handler) produced it.

A pure ASGI middleware rather than Starlette's BaseHTTPMiddleware: it only edits the response-start
message, so it adds no task, no body buffering and no per-request Request object.
"""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# For HTML without a policy of its own (error pages, the administrator guide): no script, plugin or
# <base> at all. Pages rendered for a tenant set a stricter policy with the tenant's framing rules
# (pages.render_page).
DEFAULT_PAGE_CSP = "script-src 'none'; object-src 'none'; base-uri 'none'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_security_headers(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    # Browsers must not guess: a JSON body that echoes user input must never run as HTML or script.
    if b"x-content-type-options" not in names:
        headers.append((b"x-content-type-options", b"nosniff"))
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.lower().startswith(b"text/html") and b"content-security-policy" not in names:
        headers.append((b"content-security-policy", DEFAULT_PAGE_CSP.encode()))
    return headers
