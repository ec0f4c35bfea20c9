"""Token redaction in logs, through the handlers `logs.configure()` really installs.

Run in a fresh interpreter: the logging set-up is process-wide, and pytest's own capture handlers
would otherwise sit beside the ones under test.
"""
from __future__ import annotations

import subprocess
import sys

from boxsync.logs import redact

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqaXJhOjEyMyJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
OPAQUE = "opaque-bearer-0123456789"  # not a JWT: caught by where it appears, not by its shape

SCRIPT = r"""
import logging, logging.config, sys
import uvicorn.config
# uvicorn's own handlers, as `uvicorn.run` installs them with its default log_config.
logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
from boxsync import logs
logs.configure()
token, opaque = sys.argv[1], sys.argv[2]
logging.getLogger("boxsync.webhooks").warning("delivery to /webhooks/jira?jwt=%s refused", token)
logging.getLogger("boxsync.sync.x").info("GET /panel/wbs?issueKey=A-1&jwt=" + token)
logging.getLogger("boxsync.sync.x").warning("headers %s", {"Authorization": "JWT " + token})
logging.getLogger("boxsync.jira").warning("Authorization: Bearer %s", opaque)
logging.getLogger("boxsync.sync.x").warning("%(url)s", {"url": "https://x.test/cb?access_token=" + opaque})
logging.getLogger("some.library").warning("token %s in a path /t/%s", token, token)
try:
    raise ValueError("refused assertion=" + opaque + " and " + token)
except ValueError:
    logging.getLogger("boxsync.sync.x").exception("worker failed")
logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET",
                                         "/panel/wbs?issueKey=A-1&jwt=" + token, "1.1", 200)
logging.getLogger("uvicorn.error").info("Started server process %d", 42)
logging.getLogger("boxsync.sync.x").warning("issue %s moved to %s", "A-1", "Box 7")
"""


def test_records_of_every_logger_are_redacted_by_the_handlers():
    out = subprocess.run([sys.executable, "-c", SCRIPT, TOKEN, OPAQUE], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    output = out.stdout + out.stderr
    assert TOKEN not in output and OPAQUE not in output
    assert TOKEN[:20] not in output  # not even a prefix of it
    for expected in (
        "boxsync.webhooks: delivery to /webhooks/jira?jwt=[redacted] refused",
        "GET /panel/wbs?issueKey=A-1&jwt=[redacted]",
        "{'Authorization': 'JWT [redacted]'}",
        "Authorization: Bearer [redacted]",
        "https://x.test/cb?access_token=[redacted]",
        "token [redacted] in a path /t/[redacted]",
        "ValueError: refused assertion=[redacted] and [redacted]",
        # uvicorn's access formatter still gets its five arguments.
        '127.0.0.1:1 - "GET /panel/wbs?issueKey=A-1&jwt=[redacted] HTTP/1.1" 200',
        "Started server process 42",
        "issue A-1 moved to Box 7",
    ):
        assert expected in output, (expected, output)


def test_redaction_leaves_lines_without_tokens_alone():
    line = '127.0.0.1:53422 - "GET /api/boxes/12/items?startAt=0&maxResults=50 HTTP/1.1" 200'
    assert redact(line) is line  # the pre-check returned it untouched, no pattern ran
    assert redact("GET /x?JWT=abc&a=1") == "GET /x?JWT=[redacted]&a=1"
    assert redact("nextPageToken=abc") == "nextPageToken=[redacted]"
    assert redact("monkey=1&b=2") == "monkey=1&b=2"


def test_a_token_split_between_template_and_arguments_is_still_redacted():
    """The second pass over the formatted message is skipped for access lines whose arguments were
    redacted on their own; it must still run when the token spans the template and an argument."""
    import io
    import logging

    from boxsync import logs

    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(logs.RedactTokens())
    logger = logging.getLogger("boxsync.test.split")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%s=%s", "jwt", "abc.def")
        logger.warning("Authorization: Bearer %s", "opaque123")
        logger.warning("%s", {"k": 1})
        logger.warning('%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/p?x=1&jwt=eyJa.eyJb.sig", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    out = handler.stream.getvalue()
    assert "abc.def" not in out and "opaque123" not in out and "eyJ" not in out
    assert 'GET /p?x=1&jwt=[redacted] HTTP/1.1" 200' in out
