"""Storage test kit: empty databases of their own (SQLite and PostgreSQL) and extra migration
revisions written for one test, to play a newer release against this code."""
from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, _create_pg_database, _drop_pg_database, _run


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request, tmp_path):
    """An empty database (no schema) for one test, on each backend; dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
        return
    name = f"boxsync_fresh_{uuid.uuid4().hex[:12]}"
    try:
        _run(_create_pg_database(name))
    except Exception as exc:  # connection refused, auth, timeout
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    _run(_drop_pg_database(name))


def write_revision(directory: Path, revision: str, down_revision: str, upgrade: str, downgrade: str = "pass",
                   min_code_revision: str | None = None) -> None:
    """A migration file as a later release would ship it; bodies are the code of upgrade()/downgrade()."""
    directory.mkdir(parents=True, exist_ok=True)
    declared = f"min_code_revision = {min_code_revision!r}\n" if min_code_revision else ""
    body = (
        f'"""test revision {revision}"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\nbranch_labels = None\ndepends_on = None\n"
        f"{declared}\n\n"
        f"def upgrade():\n{textwrap.indent(textwrap.dedent(upgrade).strip(), '    ')}\n\n\n"
        f"def downgrade():\n{textwrap.indent(textwrap.dedent(downgrade).strip(), '    ')}\n"
    )
    (directory / f"{revision}.py").write_text(body)
