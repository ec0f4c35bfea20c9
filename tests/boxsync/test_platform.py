"""Configuration, secrets at rest, site URL policy, health, and the CLI (migrations: test_migrations.py)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from boxsync import crypto, db
from boxsync.config import ConfigError, Settings
from boxsync.netpolicy import URLRefused, check_site_url
from tests.boxsync.connectkit import boxsync_server
from tests.conftest import POSTGRES_ADMIN_URL, _create_pg_database, _drop_pg_database
from tests.support.servers import bind_loopback


def test_defaults_are_for_development(tmp_path):
    s = Settings.from_env({}, var_dir=tmp_path)
    assert s.base_url == "http://localhost:8000" and s.app_key == "boxsync" and s.env == "development"
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/boxsync.db"
    assert s.install_keys_url == "https://connect-install-keys.atlassian.com"
    assert s.oauth_url == "https://oauth-2-authorization-server.services.atlassian.com"
    # The development key is generated once, kept private, and reused.
    key_file = tmp_path / "secret.key"
    assert len(s.secret_key) == 32 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert Settings.from_env({}, var_dir=tmp_path).secret_key == s.secret_key
    assert "secret_key" not in repr(s)


@pytest.mark.parametrize("env,message", [
    ({"BOXSYNC_ENV": "production", "BOXSYNC_BASE_URL": "http://app.example.com"}, "https"),
    ({"BOXSYNC_ENV": "production", "BOXSYNC_BASE_URL": "https://app.example.com"}, "BOXSYNC_SECRET_KEY is required"),
    ({"BOXSYNC_SECRET_KEY": "c2hvcnQ"}, "32 bytes"),
    ({"BOXSYNC_ENV": "staging"}, "BOXSYNC_ENV"),
    ({"BOXSYNC_BASE_URL": "ftp://x"}, "BOXSYNC_BASE_URL"),
    ({"BOXSYNC_APP_KEY": "bad key!"}, "BOXSYNC_APP_KEY"),
    ({"BOXSYNC_ENV": "production", "BOXSYNC_BASE_URL": "https://app.example.com", "BOXSYNC_SECRET_KEY": "A" * 43,
      "BOXSYNC_INSTALL_KEYS_URL": "http://keys.example.com"}, "BOXSYNC_INSTALL_KEYS_URL must use https"),
    ({"BOXSYNC_ENV": "production", "BOXSYNC_BASE_URL": "https://app.example.com", "BOXSYNC_SECRET_KEY": "A" * 43,
      "BOXSYNC_OAUTH_URL": "http://auth.example.com"}, "BOXSYNC_OAUTH_URL must use https"),
    ({"BOXSYNC_INSTALL_KEYS_URL": "keys"}, "absolute"),
])
def test_bad_configuration_is_refused_with_a_reason(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, var_dir=tmp_path)


def test_production_with_a_key_and_https(tmp_path):
    key = "A" * 43
    s = Settings.from_env({"BOXSYNC_ENV": "production", "BOXSYNC_BASE_URL": "https://app.example.com/",
                           "BOXSYNC_SECRET_KEY": key}, var_dir=tmp_path)
    assert s.production and s.base_url == "https://app.example.com" and not (tmp_path / "secret.key").exists()


def test_secrets_are_bound_to_their_owner():
    key = os.urandom(32)
    token = crypto.encrypt(key, "shh", "tenant-a")
    assert "shh" not in token and crypto.decrypt(key, token, "tenant-a") == "shh"
    with pytest.raises(crypto.SecretError):
        crypto.decrypt(key, token, "tenant-b")
    with pytest.raises(crypto.SecretError):
        crypto.decrypt(os.urandom(32), token, "tenant-a")


@pytest.mark.parametrize("url,production,ok", [
    ("https://acme.atlassian.net", False, True),
    ("http://127.0.0.1:2990", False, True),
    ("http://localhost:2990/", False, True),
    ("http://acme.atlassian.net", False, False),
    ("http://127.0.0.1:2990", True, False),
    ("https://127.0.0.1", True, False),
    ("https://localhost", True, False),
    ("https://10.1.2.3", True, False),
    ("https://169.254.169.254", True, False),
    ("https://[::1]", True, False),
    ("https://user:pw@acme.atlassian.net", True, False),
    ("javascript:alert(1)", False, False),
])
async def test_site_url_policy(url, production, ok):
    if ok:
        assert await check_site_url(url, production=production) == url.rstrip("/")
    else:
        with pytest.raises(URLRefused):
            await check_site_url(url, production=production)


async def test_an_outdated_schema_is_refused_and_a_new_one_migrated(tmp_path):
    from boxsync.app import SchemaOutdated, prepare_database

    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    try:
        await db.migrate(engine, "0001")
        with pytest.raises(SchemaOutdated, match="run `boxsync migrate`"):
            await prepare_database(engine)
        await db.migrate(engine)
        await prepare_database(engine)  # at head: nothing to do, no error
    finally:
        await engine.dispose()
    fresh = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/new.db")
    try:
        await prepare_database(fresh)
        async with fresh.connect() as conn:
            assert await db.current_revision(conn) == db.head_revision()
    finally:
        await fresh.dispose()


def test_health_is_ok_with_the_database(database_url):
    with boxsync_server(database_url, "http://127.0.0.1:9/keys") as app:
        resp = httpx.get(app + "/healthz")
        assert resp.status_code == 200 and resp.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_goes_away():
    """A PostgreSQL database dropped under a running app: health says so instead of hanging."""
    name = f"boxsync_health_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_create_pg_database(name))
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    try:
        with boxsync_server(url, "http://127.0.0.1:9/keys") as app:
            assert httpx.get(app + "/healthz").status_code == 200
            asyncio.run(_drop_pg_database(name))
            resp = httpx.get(app + "/healthz", timeout=30)
            assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
    finally:
        asyncio.run(_drop_pg_database(name))


def test_cli_migrates_and_serves_the_descriptor(tmp_path):
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "BOXSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
           "BOXSYNC_BASE_URL": f"http://127.0.0.1:{port}", "BOXSYNC_SECRET_KEY": "B" * 43}
    out = subprocess.run([sys.executable, "-m", "boxsync.cli", "migrate"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    proc = subprocess.Popen([sys.executable, "-m", "boxsync.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/atlassian-connect.json")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "boxsync serve did not start"
                time.sleep(0.1)
        assert resp.status_code == 200 and resp.json()["baseUrl"] == f"http://127.0.0.1:{port}"
        # An iframe load carries its JWT in the query; the access log must not.
        token = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ"
        assert httpx.get(f"http://127.0.0.1:{port}/panel/wbs?issueKey=ABC-1&jwt={token}").status_code == 401
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
    assert "GET /panel/wbs?issueKey=ABC-1&jwt=[redacted]" in output, output[-2000:]
    assert token not in output
    # Bad configuration: a clear message and exit code 2, never a traceback.
    bad = subprocess.run([sys.executable, "-m", "boxsync.cli", "serve"], capture_output=True, text=True,
                         env={**env, "BOXSYNC_ENV": "production"}, timeout=60)
    assert bad.returncode == 2 and "configuration error" in bad.stderr and "Traceback" not in bad.stderr
