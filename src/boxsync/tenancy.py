"""Tenant scoping: the one way to read and write tenant-owned tables.

A tenant-owned table is declared with `info={"tenant_owned": True}` and has a `tenant_id` column.
Statements on such tables are built through a `Scope`:

    scope = Scope(tenant.id)
    rows = await conn.execute(scope.select(boxes).where(boxes.c.name == name))
    await conn.execute(scope.insert(boxes).values(name=name))      # tenant_id filled in
    await conn.execute(scope.update(boxes).where(...).values(...))
    await conn.execute(scope.delete(boxes).where(...))

Every statement a scope builds is filtered (or filled) by the tenant and carries the execution
option `tenant_id`. `guard(engine)` refuses, before it reaches the database, any statement that
touches a tenant-owned table without that option, and any select or DML whose WHERE clause does not
constrain `tenant_id` of every tenant-owned table it reads. Forgetting the tenant is therefore a
loud error in the first test that runs the code, not a silent cross-tenant read in production.

Work that is cross-tenant by nature (a worker claiming due work for all tenants, test clean-up)
says so explicitly with `.execution_options(cross_tenant=True)`, which is easy to find in review.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase


class CrossTenantQuery(RuntimeError):
    """A statement on a tenant-owned table was built without a tenant scope."""


def is_tenant_owned(table: Any) -> bool:
    return isinstance(table, sa.Table) and bool(table.info.get("tenant_owned"))


@dataclass(frozen=True)
class Scope:
    """Statements for one tenant. Cheap to create; holds no connection."""

    tenant_id: int

    def filter(self, table: Any) -> sa.ColumnElement[bool]:
        """The criterion for a further tenant-owned table (or alias of one) joined into a scoped select."""
        _require_owned(table)
        return table.c.tenant_id == self.tenant_id

    def select(self, table: sa.Table, *columns: Any) -> sa.Select:
        """`SELECT columns (default: the whole table) FROM table WHERE tenant_id = …`."""
        return (sa.select(*(columns or (table,))).select_from(table)
                .where(self.filter(table)).execution_options(tenant_id=self.tenant_id))

    def insert(self, table: sa.Table, *, upsert: str | None = None) -> Any:
        """`INSERT` with tenant_id set. `upsert="postgresql"|"sqlite"` (the connection's dialect name)
        returns that dialect's insert, for `on_conflict_do_update` / `on_conflict_do_nothing`."""
        _require_owned(table)
        if upsert is None:
            stmt = sa.insert(table)
        else:
            stmt = (postgresql if upsert == "postgresql" else sqlite).insert(table)
        return stmt.values(tenant_id=self.tenant_id).execution_options(tenant_id=self.tenant_id)

    def update(self, table: sa.Table) -> sa.Update:
        return sa.update(table).where(self.filter(table)).execution_options(tenant_id=self.tenant_id)

    def delete(self, table: sa.Table) -> sa.Delete:
        return sa.delete(table).where(self.filter(table)).execution_options(tenant_id=self.tenant_id)


def _require_owned(table: Any) -> None:
    if not _owned(table):
        raise CrossTenantQuery(f"table {table.name!r} is not tenant-owned; query it directly")


# -- the guard -------------------------------------------------------------------------------------

def _owned(element: Any) -> bool:
    """A tenant-owned table, or an alias of one (an alias is a FROM of its own with its own columns)."""
    if isinstance(element, sa.Alias):
        return _owned(element.element)
    return is_tenant_owned(element)


def _owned_froms(stmt: Any) -> set[Any]:
    found: set[Any] = set()
    for element in visitors.iterate(stmt):
        if _owned(element):
            found.add(element)
        elif isinstance(element, sa.ColumnClause) and _owned(getattr(element, "table", None)):
            found.add(element.table)
    return found


def _constrained(where: Any, source: Any) -> bool:
    """Whether the WHERE clause compares `source.tenant_id` (a table's or an alias's) with something."""
    if where is None:
        return False
    target = source.c.tenant_id
    return any(element is target for element in visitors.iterate(where))


def check(stmt: Any, options: dict[str, Any]) -> None:
    """Raise CrossTenantQuery when `stmt` may touch another tenant's rows. Public for tests."""
    if not isinstance(stmt, (sa.Select, UpdateBase)) or options.get("cross_tenant"):
        return
    names = _structure_ok.get(stmt)
    if names is None:
        owned = _owned_froms(stmt)
        names = ", ".join(sorted(t.name for t in owned))
        if owned and options.get("tenant_id") is None:
            raise CrossTenantQuery(f"statement on tenant-owned {names} built without a tenant Scope")
        if owned and not isinstance(stmt, sa.Insert):  # an INSERT … SELECT is checked through its select
            where = stmt.whereclause
            missing = [t.name for t in owned if not _constrained(where, t)]
            if missing:
                raise CrossTenantQuery(f"tenant-owned {', '.join(sorted(missing))} not filtered by tenant: "
                                       "add scope.filter(table) for every joined table")
        _structure_ok[stmt] = names
    if names and options.get("tenant_id") is None:
        raise CrossTenantQuery(f"statement on tenant-owned {names} built without a tenant Scope")


# Statements whose structure passed (every tenant-owned table filtered by tenant), with the names of
# those tables: a statement built once and run often (the hot paths) is walked once. The tenant
# option is still required on every execution.
_structure_ok: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def guard(engine: AsyncEngine) -> None:
    """Install the check on every statement the engine executes."""

    @event.listens_for(engine.sync_engine, "before_execute")
    def _before_execute(conn, clauseelement, multiparams, params, execution_options):  # noqa: ANN001
        merged = {**conn.get_execution_options(), **getattr(clauseelement, "_execution_options", {}),
                  **(execution_options or {})}
        check(clauseelement, merged)


# -- declaring tenant-owned tables -----------------------------------------------------------------

def owned_table(name: str, metadata: sa.MetaData, *columns: Any, key: tuple[str, ...] = ("id",),
                **kwargs: Any) -> sa.Table:
    """Declare a tenant-owned table: `tenant_id` (FK tenants.id, ON DELETE CASCADE) as its first
    column and the first column of its primary key `(tenant_id, *key)`.

    Keying every tenant-owned row by its tenant keeps each tenant's rows together in every index
    and lets the schema later be distributed by tenant (e.g. Citus). Indexes and unique constraints
    passed in must start with tenant_id as well (tests/boxsync/test_storage_keys.py checks)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("tenant_id", *key),
        info={"tenant_owned": True},
        **kwargs,
    )
