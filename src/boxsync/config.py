"""Configuration, read once from environment variables.

Every setting has a development default so that `make run` works on a fresh machine; production
refuses the defaults that would be unsafe there (plain-http base URL, a generated secret key).
"""
from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from boxsync.jira.limits import DEFAULT_MAX_CONCURRENCY

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_INSTALL_KEYS_URL = "https://connect-install-keys.atlassian.com"
DEFAULT_OAUTH_URL = "https://oauth-2-authorization-server.services.atlassian.com"
# Calls in flight to one Jira site at most: no more than the shared pool's 100 connections.
MAX_JIRA_CONCURRENCY_PER_SITE = 100
VAR_DIR = Path("var")


class ConfigError(ValueError):
    """A setting is missing or unusable; the message names the variable and what to do."""


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR}/boxsync.db"
    app_key: str = "boxsync"
    secret_key: bytes = field(default=b"", repr=False)  # never printed
    install_keys_url: str = DEFAULT_INSTALL_KEYS_URL
    oauth_url: str = DEFAULT_OAUTH_URL
    env: str = "development"
    jwt_leeway: int = 30
    # How long a verified tenant may be served from memory at most (0: read it on every request).
    tenant_cache_seconds: float = 5.0
    # Where iframe pages load Atlassian's JS bridge from (the sandbox points it at the simulator).
    all_js_url: str = "https://connect-cdn.atl-paas.net/all.js"
    # Database connections per process: pool_size kept open, up to max_overflow more under load.
    db_pool_size: int = 5
    db_max_overflow: int = 5
    jira_max_concurrency_per_site: int = DEFAULT_MAX_CONCURRENCY
    # Full sync: bulkfetch calls in flight per sync (bounded again by the per-site cap above).
    sync_bulk_concurrency: int = 8
    # Opening a Box or the panel re-syncs unless the last sync finished less than this long ago
    # (an admin's Re-sync always runs).
    sync_fresh_seconds: float = 30.0
    # The release this code is. A new one flags every Box for a full re-read the next time it is
    # opened (BOXSYNC_RELEASE overrides the package version, e.g. with a build id).
    release: str = ""
    # How long a sync run's lease lasts without renewal: a crashed process's run is taken over
    # by the next trigger after this (the running process renews it every progress report).
    sync_lease_seconds: float = 30.0

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def base_path(self) -> str:
        """Path part of the base URL ('' at the root): stripped before computing a qsh."""
        return urlsplit(self.base_url).path.rstrip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, var_dir: Path = VAR_DIR) -> "Settings":
        env = os.environ if environ is None else environ
        mode = env.get("BOXSYNC_ENV", "development").strip().lower()
        if mode not in ("development", "production"):
            raise ConfigError(f"BOXSYNC_ENV must be 'development' or 'production', not {mode!r}")
        base_url = env.get("BOXSYNC_BASE_URL", DEFAULT_BASE_URL).strip().rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"BOXSYNC_BASE_URL must be an absolute http(s) URL, not {base_url!r}")
        if mode == "production" and parts.scheme != "https":
            raise ConfigError("BOXSYNC_BASE_URL must use https in production: Jira refuses plain-http apps")
        keys_url = env.get("BOXSYNC_INSTALL_KEYS_URL", DEFAULT_INSTALL_KEYS_URL).strip().rstrip("/")
        oauth_url = env.get("BOXSYNC_OAUTH_URL", DEFAULT_OAUTH_URL).strip().rstrip("/")
        for name, url in (("BOXSYNC_INSTALL_KEYS_URL", keys_url), ("BOXSYNC_OAUTH_URL", oauth_url)):
            scheme = urlsplit(url).scheme
            if scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ConfigError(f"{name} must be an absolute http(s) URL, not {url!r}")
            # Install keys decide which installs are genuine: over plain http they could be swapped.
            if mode == "production" and scheme != "https":
                raise ConfigError(f"{name} must use https in production")
        key = env.get("BOXSYNC_APP_KEY", "boxsync").strip()
        if not key or len(key) > 64 or not all(c.isalnum() or c in "-._" for c in key):
            raise ConfigError("BOXSYNC_APP_KEY must be 1-64 characters of letters, digits, '-', '.', '_'")
        leeway = env.get("BOXSYNC_JWT_LEEWAY", "30")
        if not leeway.isdigit() or int(leeway) > 300:
            raise ConfigError("BOXSYNC_JWT_LEEWAY must be a whole number of seconds, at most 300")
        pool_size = _whole_number(env, "BOXSYNC_DB_POOL_SIZE", 5, 1, 100)
        max_overflow = _whole_number(env, "BOXSYNC_DB_MAX_OVERFLOW", 5, 0, 100)
        cache_seconds = env.get("BOXSYNC_TENANT_CACHE_SECONDS", "5")
        if not cache_seconds.isdigit() or int(cache_seconds) > 300:
            raise ConfigError("BOXSYNC_TENANT_CACHE_SECONDS must be a whole number of seconds, at most 300 "
                              "(0 turns the tenant cache off)")
        concurrency = env.get("BOXSYNC_JIRA_MAX_CONCURRENCY_PER_SITE", str(DEFAULT_MAX_CONCURRENCY))
        concurrency = concurrency.strip()
        if not concurrency.isdecimal() or not 1 <= int(concurrency) <= MAX_JIRA_CONCURRENCY_PER_SITE:
            raise ConfigError(f"BOXSYNC_JIRA_MAX_CONCURRENCY_PER_SITE must be a whole number from 1 to "
                              f"{MAX_JIRA_CONCURRENCY_PER_SITE} (calls in flight to one Jira site), not {concurrency!r}")
        return cls(
            base_url=base_url,
            database_url=env.get("BOXSYNC_DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir}/boxsync.db",
            app_key=key,
            secret_key=_secret_key(env.get("BOXSYNC_SECRET_KEY"), mode, var_dir),
            install_keys_url=keys_url,
            oauth_url=oauth_url,
            env=mode,
            jwt_leeway=int(leeway),
            tenant_cache_seconds=float(cache_seconds),
            all_js_url=env.get("BOXSYNC_ALL_JS_URL", "https://connect-cdn.atl-paas.net/all.js"),
            db_pool_size=pool_size,
            db_max_overflow=max_overflow,
            jira_max_concurrency_per_site=int(concurrency),
            sync_bulk_concurrency=_whole_number(env, "BOXSYNC_SYNC_BULK_CONCURRENCY", 8, 1, 32),
            sync_fresh_seconds=float(_whole_number(env, "BOXSYNC_SYNC_FRESH_SECONDS", 30, 0, 86_400)),
            release=env.get("BOXSYNC_RELEASE", "").strip()[:64],
            sync_lease_seconds=float(_whole_number(env, "BOXSYNC_SYNC_LEASE_SECONDS", 30, 2, 3600)),
        )


def _whole_number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = env.get(name, "").strip() or str(default)
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def _secret_key(value: str | None, mode: str, var_dir: Path) -> bytes:
    """The key that encrypts secrets at rest: 32 bytes, given base64-encoded.

    Development generates one into var/secret.key on first use so that a restart can still read
    what it stored; production must be given one, since a lost key means lost tenant secrets.
    """
    if value:
        try:
            raw = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        except ValueError as exc:
            raise ConfigError("BOXSYNC_SECRET_KEY must be 32 bytes, base64-encoded") from exc
        if len(raw) != 32:
            raise ConfigError("BOXSYNC_SECRET_KEY must be 32 bytes, base64-encoded "
                              "(make one with: boxsync secret-key)")
        return raw
    if mode == "production":
        raise ConfigError("BOXSYNC_SECRET_KEY is required in production (make one with: boxsync secret-key)")
    path = var_dir / "secret.key"
    if path.exists():
        return _secret_key(path.read_text(), mode, var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    encoded = new_secret_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encoded)
    return _secret_key(encoded, mode, var_dir)


def new_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
