"""Under CI a missing service fails the run; elsewhere it skips the tests that need it.

Each case runs the real fixtures and tests in a pytest of its own (a subprocess), with PostgreSQL
pointed at a closed port, no `node` on PATH and no usable browser, and reads how that run ended."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import ci_mode

REPO = Path(__file__).resolve().parents[1]
BRIDGE = "tests/jirasim/test_host_js_bridge.py::test_ap_context_get_token_through_the_host_page"
BROWSER = "tests/test_browser_smoke.py::test_admin_guide_renders_in_chromium"
PG_PROBE = '''\
from tests.conftest import database_url, migrated_database  # noqa: F401 - the fixtures under test


def test_needs_postgresql(database_url):
    assert database_url
'''


def run_without_services(tmp_path: Path, ci: str | None, *, browser: str) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_pg_probe.py"
    probe.write_text(PG_PROBE)
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    env.update({
        "BOXSYNC_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:9/test",  # nothing listens on 9
        "PATH": str(no_tools),  # so no node
        "COLUMNS": "400",  # keep pytest's summary lines whole
    })
    if browser == "no chromium":
        env["BOXSYNC_TEST_CHROMIUM"] = str(tmp_path / "chromium")
    else:  # an executable that is there, and a playwright that cannot be imported
        env["BOXSYNC_TEST_CHROMIUM"] = sys.executable
        fake = tmp_path / "site" / "playwright"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text('raise ImportError("no playwright here")\n')
        env["PYTHONPATH"] = str(fake.parent)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml"),
         "--basetemp", str(tmp_path / "basetemp"), BRIDGE, BROWSER, str(probe)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("ci", "browser", "browser_reason"), [
    ("1", "no chromium", "chromium is not installed"),
    ("yes", "no playwright", "the playwright package is not installed"),
])
def test_with_ci_set_every_missing_service_fails_the_run(tmp_path, ci, browser, browser_reason):
    done = run_without_services(tmp_path, ci, browser=browser)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert re.search(r"^ERROR .*test_needs_postgresql\[postgresql\] - Failed: PostgreSQL not reachable", out, re.M), out
    assert re.search(r"^PASSED .*test_needs_postgresql\[sqlite\]", out, re.M), out
    assert re.search(rf"^FAILED {re.escape(BRIDGE)} - Failed: node is not installed", out, re.M), out
    assert re.search(rf"^FAILED {re.escape(BROWSER)} - Failed: {browser_reason}", out, re.M), out
    assert "skipped" not in out.splitlines()[-1], out


def test_without_ci_missing_services_skip(tmp_path):
    done = run_without_services(tmp_path, None, browser="no chromium")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "PostgreSQL not reachable" in out and "node is not installed" in out and "chromium is not installed" in out
    assert re.search(r"^1 passed, 3 skipped", out.splitlines()[-1]), out


@pytest.mark.parametrize(("value", "expected"), [
    (None, False), ("", False), ("true", True), ("1", True), ("yes", True), ("True", True), ("on", True),
])
def test_any_non_empty_ci_value_is_ci(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert ci_mode() is expected
