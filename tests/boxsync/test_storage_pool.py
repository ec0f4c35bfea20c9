"""Connection budget: each process opens at most the configured number of database connections."""
from __future__ import annotations

import httpx
import pytest

from boxsync.app import create_app
from boxsync.config import ConfigError, Settings
from tests.boxsync.connectkit import settings_for
from tests.support.servers import serve


def test_pool_settings_default_and_validate(tmp_path):
    s = Settings.from_env({}, var_dir=tmp_path)
    assert (s.db_pool_size, s.db_max_overflow) == (5, 5)
    s = Settings.from_env({"BOXSYNC_DB_POOL_SIZE": "12", "BOXSYNC_DB_MAX_OVERFLOW": "0"}, var_dir=tmp_path)
    assert (s.db_pool_size, s.db_max_overflow) == (12, 0)


@pytest.mark.parametrize("env,message", [
    ({"BOXSYNC_DB_POOL_SIZE": "0"}, "BOXSYNC_DB_POOL_SIZE must be a whole number from 1 to 100, not '0'"),
    ({"BOXSYNC_DB_POOL_SIZE": "ten"}, "BOXSYNC_DB_POOL_SIZE must be a whole number from 1 to 100, not 'ten'"),
    ({"BOXSYNC_DB_POOL_SIZE": "101"}, "BOXSYNC_DB_POOL_SIZE must be a whole number"),
    ({"BOXSYNC_DB_POOL_SIZE": "²"}, "BOXSYNC_DB_POOL_SIZE must be a whole number"),
    ({"BOXSYNC_DB_MAX_OVERFLOW": "-1"}, "BOXSYNC_DB_MAX_OVERFLOW must be a whole number from 0 to 100, not '-1'"),
    ({"BOXSYNC_DB_MAX_OVERFLOW": "1.5"}, "BOXSYNC_DB_MAX_OVERFLOW must be a whole number"),
])
def test_bad_pool_settings_are_refused_with_a_reason(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, var_dir=tmp_path)


def test_the_app_opens_at_most_the_configured_connections(database_url):
    holder = {}

    def factory(url: str):
        holder["app"] = create_app(settings_for(url, database_url, "http://127.0.0.1:9/keys",
                                                db_pool_size=2, db_max_overflow=1))
        return holder["app"]

    with serve(factory) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        pool = holder["app"].state.engine.sync_engine.pool
        assert pool.size() == 2 and pool._max_overflow == 1
