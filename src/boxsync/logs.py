"""Logging setup shared by `boxsync serve` and the sandbox.

Jira puts the iframe JWT in the query string (`?…&jwt=…`), and uvicorn's access log prints the
full request line, so tokens would land in every log. The filter below rewrites them before the
record is written. It sits on the handlers, not on loggers: a logger's filters only see records
logged on that very logger, while a handler sees every record that reaches it, from
`boxsync.webhooks`, `boxsync.sync.x` or any library alike.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping

_PATTERNS = (
    # Query or form parameters: ?jwt=…, &access_token=…, assertion=…
    (re.compile(r"(?i)((?:^|[?&;,\s])(?:jwt|[a-z_]*token|assertion)=)[^&\s\"',]*"), r"\1[redacted]"),
    # Header values: "Authorization: JWT …", "authorization': 'Bearer …"
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:jwt|bearer|basic)\s+)[^\s\"',]+"), r"\1[redacted]"),
    # Any JWT wherever it appears (a path, an error message): every token we handle is one.
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted]"),
)


# A text without "jwt", "token", "eyj", "assertion" or "authorization" (in any case) cannot match
# any pattern above, so the regexes only run on the few lines that may carry a token; the access
# log's other lines cost one lower() and a few substring searches (bench/log_redaction.py).
def _may_carry_token(text: str) -> bool:
    lowered = text.lower()  # spelled out rather than any(...): this runs for every record
    return ("jwt" in lowered or "token" in lowered or "eyj" in lowered or "assertion" in lowered
            or "authorization" in lowered)


def redact(text: str) -> str:
    if not _may_carry_token(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _text(value: Any) -> str:
    if value is None or isinstance(value, (int, float)):
        return ""
    return value if isinstance(value, str) else str(value)


def _clean(value: Any) -> Any:
    text = _text(value)  # a URL or an exception passed as an argument is printed with str() anyway
    return redact(text) if _may_carry_token(text) else value


class RedactTokens(logging.Filter):
    """Redacts the message, its arguments and any traceback text of every record it sees.

    Arguments are redacted one by one and keep their positions (uvicorn's access formatter
    unpacks them). Only when the formatted message still carries a token (say "Bearer %s" with
    an opaque token as the argument) is the record replaced by its redacted text. A record with
    no hint of a token anywhere, nearly every access-log line, is passed on untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else ()
        if _may_carry_token(" ".join([_text(record.msg), *map(_text, values)])):
            _redact_message(record)
        if record.exc_info and not record.exc_text:
            # Formatted here (formatters reuse exc_text) so that an exception message cannot leak.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_message(record: logging.LogRecord) -> None:
    # Each argument is redacted on its own first. The whole formatted message needs a second pass
    # only when a token could span the template and an argument ("Authorization: Bearer %s"), or an
    # argument with a hint was left unchanged ("%s=%s" % ("jwt", value)). Every iframe request's
    # access line carries `jwt=…` in its path argument, so skipping the second pass there matters.
    whole = _may_carry_token(_text(record.msg))
    if isinstance(record.args, tuple):
        cleaned = tuple(_clean(a) for a in record.args)
        whole = whole or _hint_left(record.args, cleaned)
        record.args = cleaned
    elif isinstance(record.args, Mapping):
        cleaned_map = {k: _clean(v) for k, v in record.args.items()}
        whole = whole or _hint_left(tuple(record.args.values()), tuple(cleaned_map.values()))
        record.args = cleaned_map
    if not whole:
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it, with no arguments to leak
        record.msg, record.args = redact(_text(record.msg)), ()
        return
    redacted = redact(message)
    if redacted != message:
        record.msg, record.args = redacted, ()


def _hint_left(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    """Whether an argument that looks like it may carry a token came out of redaction unchanged."""
    return any(_may_carry_token(_text(b)) and _text(b) == _text(a) for b, a in zip(before, after))


def redact_handlers(*logger_names: str) -> None:
    """Put the filter on every handler those loggers have now (root is "")."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactTokens) for f in handler.filters):
                handler.addFilter(RedactTokens())


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per outgoing request is noise
    # uvicorn is started with log_config=None and so logs through root's handler; should it be given
    # handlers of its own, they are covered too.
    redact_handlers("", "uvicorn", "uvicorn.access", "uvicorn.error")
