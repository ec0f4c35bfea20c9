"""Logging setup shared by `boxsync serve` and the sandbox.

Jira puts the iframe JWT in the query string (`?…&jwt=…`), and uvicorn's access log prints the
full request line, so tokens would land in every log. The filter below rewrites the value before
any handler sees it.
"""
from __future__ import annotations

import logging
import re

_TOKEN_PARAM = re.compile(r"(?i)((?:^|[?&])(?:jwt|token|access_token|assertion)=)[^&\s\"]*")


def redact(text: str) -> str:
    return _TOKEN_PARAM.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per outgoing request is noise
    for name in ("uvicorn.access", "uvicorn.error", "boxsync"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
