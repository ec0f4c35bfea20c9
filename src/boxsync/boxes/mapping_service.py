"""Reading and storing a site's field and dependency mappings; the defaults on first use.

The defaults are found in the site's own field list and link types (boxes/mapping.py), so they
are made when the site is first read (the first sync or the first look at the mapping), and stored
then, rather than during the install callback, when Jira does not yet answer the app's calls.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.boxes.mapping import ATTRIBUTES, COLUMNS, FieldMapping, Mappings, default_dependencies, default_fields
from boxsync.boxes.tables import PRIMARY, dependency_mappings, field_mappings
from boxsync.connect.tenants import now
from boxsync.jira.client import JiraClient
from boxsync.tenancy import Scope


def _mapping(row: Any) -> FieldMapping:
    return FieldMapping(**{attr: getattr(row, COLUMNS[attr]) for attr in ATTRIBUTES})


async def load(conn: AsyncConnection, scope: Scope, connection_id: int = PRIMARY) -> Mappings | None:
    """The stored mappings, or None when the site has none yet."""
    rows = (await conn.execute(scope.select(field_mappings).where(
        field_mappings.c.connection_id == connection_id))).all()
    general = next((r for r in rows if r.project_key == ""), None)
    if general is None:
        return None
    deps = (await conn.execute(scope.select(dependency_mappings).where(
        dependency_mappings.c.connection_id == connection_id).order_by(dependency_mappings.c.type))).all()
    return Mappings(general=_mapping(general),
                    projects={r.project_key: _mapping(r) for r in rows if r.project_key != ""},
                    dependencies=[(r.type, r.link_type_id, r.reversed) for r in deps])


async def store(conn: AsyncConnection, scope: Scope, mappings: Mappings, connection_id: int = PRIMARY,
                *, dependencies: bool = True, fields: bool = True) -> None:
    at = now()
    if fields:
        await conn.execute(scope.delete(field_mappings).where(field_mappings.c.connection_id == connection_id))
        for key, mapping in [("", mappings.general), *sorted(mappings.projects.items())]:
            await conn.execute(scope.insert(field_mappings).values(
                connection_id=connection_id, project_key=key, updated_at=at,
                **{COLUMNS[attr]: getattr(mapping, attr) for attr in ATTRIBUTES}))
    if dependencies:
        await conn.execute(scope.delete(dependency_mappings).where(
            dependency_mappings.c.connection_id == connection_id))
        for kind, link_type_id, reversed_ in mappings.dependencies:
            await conn.execute(scope.insert(dependency_mappings).values(
                connection_id=connection_id, type=kind, link_type_id=link_type_id, reversed=reversed_,
                updated_at=at))


async def defaults(client: JiraClient, fields: list[dict[str, Any]] | None = None) -> Mappings:
    """The install defaults, read from the site (as the app); `fields`: the site's, if just read."""
    return Mappings(general=default_fields(fields if fields is not None else await client.fields()), projects={},
                    dependencies=default_dependencies(await client.link_types()))


async def ensure(engine: Any, scope: Scope, client: JiraClient,
                 fields: list[dict[str, Any]] | None = None) -> Mappings:
    """The stored mappings, storing the site's defaults first when there are none. Two callers at
    once both read the site; the first to store wins and the other reads what it stored."""
    async with engine.connect() as conn:
        found = await load(conn, scope)
    if found is not None:
        return found
    made = await defaults(client, fields)
    try:
        async with engine.begin() as conn:
            found = await load(conn, scope)
            if found is None:
                await store(conn, scope, made)
                return made
    except sa.exc.IntegrityError:  # another process stored its defaults first (PostgreSQL)
        async with engine.connect() as conn:
            found = await load(conn, scope)
    assert found is not None
    return found
