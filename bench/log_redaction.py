"""Cost of token redaction per log record (issue 6: "a regex over every access-log line").

Compares the handler filter (`boxsync.logs.RedactTokens`) on uvicorn access-log records with and
without a token against running the patterns on every line, as before. Run:
`python bench/log_redaction.py`. Takes a few seconds.
"""
from __future__ import annotations

import logging
import re
import timeit

from boxsync import logs

ACCESS = '%s - "%s %s HTTP/%s" %d'
PLAIN = ("10.0.0.7:53422", "GET", "/api/boxes/12/items?startAt=0&maxResults=50", "1.1", 200)
TOKEN = ("10.0.0.7:53422", "GET", "/panel/wbs?issueKey=ABC-1&xdm_e=https%3A%2F%2Facme.atlassian.net&jwt="
         "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqaXJhOjEyMyIsInFzaCI6ImFiYyJ9.c2lnbmF0dXJl", "1.1", 200)
N = 50_000


# The previous filter: one regex substitution over every string argument of every record.
_PREVIOUS = re.compile(r"(?i)((?:^|[?&])(?:jwt|token|access_token|assertion)=)[^&\s\"]*")


def previous(record: logging.LogRecord) -> None:
    record.args = tuple(_PREVIOUS.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)


def per_record_us(args: tuple, work) -> float:  # noqa: ANN001
    records = [logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, ACCESS, args, None)
               for _ in range(N)]
    # Best of five runs over fresh records: the machine's other load only ever adds time.
    best = float("inf")
    for _ in range(5):
        batch = [logging.makeLogRecord(r.__dict__) for r in records]
        start = timeit.default_timer()
        for record in batch:
            work(record)
        best = min(best, timeit.default_timer() - start)
    return best / N * 1e6


def main() -> None:
    handler_filter = logs.RedactTokens()
    print(f"{'record':<24}{'previous (regex always)':>26}{'RedactTokens (pre-check)':>28}")
    for name, args in (("access line, no token", PLAIN), ("access line with a jwt", TOKEN)):
        before = per_record_us(args, previous)
        after = per_record_us(args, handler_filter.filter)
        print(f"{name:<24}{before:>23.2f} µs{after:>25.2f} µs")


if __name__ == "__main__":
    main()
