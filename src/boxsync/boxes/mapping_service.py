"""Reading and storing a site's field and dependency mappings; the defaults on first use.

The defaults are found in the site's own field list and link types (boxes/mapping.py), so they
are made when the site is first read (the first sync or the first look at the mapping), and stored
then, rather than during the install callback, when Jira does not yet answer the app's calls.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.boxes.mapping import ATTRIBUTES, COLUMNS, FieldMapping, Mappings, default_dependencies, default_fields
from boxsync.boxes.tables import PRIMARY, boxes, dependency_mappings, field_mappings
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
                # A Box may already build its structure with the default link type (Blocks): a link
                # type is a dependency or a structure builder, never both, so the Box keeps it.
                used = await builder_link_types(conn, scope)
                made = dataclasses.replace(made, dependencies=[d for d in made.dependencies if d[1] not in used])
                await store(conn, scope, made)
                return made
    except sa.exc.IntegrityError:  # another process stored its defaults first (PostgreSQL)
        async with engine.connect() as conn:
            found = await load(conn, scope)
    assert found is not None
    return found


async def builder_link_types(conn: AsyncConnection, scope: Scope) -> dict[str, str]:
    """Link type id → the name of a Box that builds its structure with it (`link:<id>`)."""
    out: dict[str, str] = {}
    rows = (await conn.execute(scope.select(boxes, boxes.c.name, boxes.c.builders).order_by(boxes.c.name))).all()
    for name, builders in rows:
        for builder in builders or []:
            if isinstance(builder, str) and builder.startswith("link:"):
                out.setdefault(builder.split(":", 1)[1], name)
    return out


async def flag_boxes(conn: AsyncConnection, scope: Scope) -> None:
    """Every Box of the tenant re-reads its issues at its next sync: what it stored was read
    through the mapping that just changed."""
    await conn.execute(scope.update(boxes).values(needs_full_sync=True))


async def _current(conn: AsyncConnection, scope: Scope) -> Mappings:
    # Replacing one half of a mapping that was never stored would leave the other half without
    # its defaults (and `ensure` would later overwrite both): callers `ensure` first.
    current = await load(conn, scope)
    if current is None:
        raise RuntimeError("the site's mappings were not stored yet (call ensure first)")
    return current


async def replace_fields(conn: AsyncConnection, scope: Scope, general: FieldMapping,
                         projects: dict[str, FieldMapping]) -> bool:
    """Store the field mapping (after `ensure`); whether it changed (then the tenant's Boxes are flagged)."""
    current = await _current(conn, scope)
    if current.general == general and dict(current.projects) == projects:
        return False
    await store(conn, scope, Mappings(general=general, projects=projects, dependencies=[]), dependencies=False)
    await flag_boxes(conn, scope)
    return True


async def replace_dependencies(conn: AsyncConnection, scope: Scope, dependencies: list[tuple[str, str, bool]]) -> bool:
    """Store the dependency mapping; whether it changed (then the tenant's Boxes are flagged, so
    that their next sync rebuilds their dependencies rather than waiting out freshness). After `ensure`."""
    current = await _current(conn, scope)
    if sorted(current.dependencies) == sorted(dependencies):
        return False
    await store(conn, scope, dataclasses.replace(current, dependencies=dependencies), fields=False)
    await flag_boxes(conn, scope)
    return True
