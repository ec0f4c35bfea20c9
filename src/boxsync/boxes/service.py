"""Use cases on Boxes: create, read, edit, delete; the Boxes holding an issue; a Box's stored WBS.

Every statement goes through the tenant's Scope. Writes run in the caller's transaction.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.boxes import mapping_service, model
from boxsync.boxes.model import Invalid
from boxsync.boxes.tables import PRIMARY, box_dependencies, box_types, boxes, tasks, wbs_nodes
from boxsync.connect.tenants import now
from boxsync.db import new_id
from boxsync.tenancy import Scope


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


async def types(conn: AsyncConnection, scope: Scope) -> tuple[str, ...]:
    added = (await conn.execute(scope.select(box_types, box_types.c.name).order_by(box_types.c.name))).scalars()
    return model.BUILTIN_TYPES + tuple(added)


async def add_type(conn: AsyncConnection, scope: Scope, name: Any) -> str:
    text = model._text(name, "name", limit=64, required=True)
    if text in await types(conn, scope):
        raise Invalid("name", f"a Box type named {text!r} exists already", status=409)
    await conn.execute(scope.insert(box_types).values(name=text, created_at=now()))
    return text


async def row(conn: AsyncConnection, scope: Scope, box_id: int) -> sa.Row:
    found = (await conn.execute(scope.select(boxes).where(boxes.c.id == box_id))).first()
    if found is None:
        raise NotFound(f"no Box with id {box_id}")
    return found


async def get(conn: AsyncConnection, scope: Scope, box_id: int) -> dict[str, Any]:
    return model.box_json((await row(conn, scope, box_id))._mapping)


async def list_boxes(conn: AsyncConnection, scope: Scope) -> list[dict[str, Any]]:
    rows = (await conn.execute(scope.select(boxes).order_by(boxes.c.name, boxes.c.id))).all()
    return [model.box_json(r._mapping) for r in rows]


async def chain(conn: AsyncConnection, scope: Scope, box_id: int) -> list[dict[str, Any]]:
    """The Box and its ancestors, nearest first."""
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    current: int | None = box_id
    while current is not None and current not in seen:
        seen.add(current)
        box = await get(conn, scope, current)
        out.append(box)
        current = None if box["parentId"] is None else int(box["parentId"])
    return out


async def children(conn: AsyncConnection, scope: Scope, box_id: int) -> list[int]:
    return list((await conn.execute(scope.select(boxes, boxes.c.id).where(boxes.c.parent_id == box_id))).scalars())


async def scope_jql(conn: AsyncConnection, scope: Scope, box_id: int) -> str | None:
    """The JQL selecting the Box's tasks; a scope-type-none Box aggregates its child Boxes'."""
    boxes_chain = await chain(conn, scope, box_id)
    if boxes_chain[0]["scopeType"] != "none":
        return model.scope_jql(boxes_chain)
    parts: list[str] = []
    pending, seen = [box_id], {box_id}
    while pending:
        for child in await children(conn, scope, pending.pop()):
            if child in seen:
                continue
            seen.add(child)
            child_chain = await chain(conn, scope, child)
            if child_chain[0]["scopeType"] == "none":
                pending.append(child)
            elif (jql := model.scope_jql(child_chain)) is not None:
                parts.append(jql)
    parts = list(dict.fromkeys(parts))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else " OR ".join(f"({p})" for p in parts)


async def _check_parent(conn: AsyncConnection, scope: Scope, box: dict[str, Any], box_id: int | None) -> None:
    if box["parentId"] is None:
        return
    parent_id = int(box["parentId"])
    try:
        ancestors = await chain(conn, scope, parent_id)
    except NotFound:
        raise Invalid("parentId", f"no Box with id {parent_id}") from None
    if box_id is not None and any(int(a["id"]) == box_id for a in ancestors):
        raise Invalid("parentId", "a Box cannot be placed under itself or one of its own sub-Boxes")
    if box["scopeType"] == "sub-scope" and not any(a["scopeType"] == "own" for a in ancestors):
        raise Invalid("parentId", "a sub-scope Box must sit under a Box with its own scope")


async def _check_link_builders(conn: AsyncConnection, scope: Scope, builders: list[str],
                               before: list[str] | tuple = ()) -> None:
    """A link type is a dependency or a structure builder, never both: a Box may not newly build
    with a link type the dependency mapping uses. (Builders it already had are left alone.)"""
    added = [b for b in builders if b.startswith("link:") and b not in before]
    if not added:
        return
    mappings = await mapping_service.load(conn, scope)
    if mappings is None:
        return  # no mapping yet: its defaults, when made, leave out link types Boxes build with
    for builder in added:
        mapped = mappings.dependency_of(builder.split(":", 1)[1])
        if mapped is not None:
            raise Invalid("builders", f"{builder} uses an issue link type that is mapped as the {mapped[0]} "
                                      "dependency; a link type is either a dependency or a structure builder. "
                                      "Choose another link type, or change the dependency mapping in the "
                                      "App Configuration first.")


async def create(conn: AsyncConnection, scope: Scope, body: Any, *, creator: str | None) -> dict[str, Any]:
    box = model.parse_box(body, types=await types(conn, scope), creator=creator)
    await _check_parent(conn, scope, box, None)
    await _check_link_builders(conn, scope, box["builders"])
    box_id, at = new_id(), now()
    await conn.execute(scope.insert(boxes).values(id=box_id, created_by=creator, created_at=at, updated_at=at,
                                                   needs_full_sync=True, **model.box_values(box)))
    return await get(conn, scope, box_id)


async def update(conn: AsyncConnection, scope: Scope, box_id: int, body: Any) -> dict[str, Any]:
    current = await get(conn, scope, box_id)
    box = model.parse_box(body, current=current, types=await types(conn, scope))
    await _check_parent(conn, scope, box, box_id)
    await _check_link_builders(conn, scope, box["builders"], current["builders"])
    values = model.box_values(box)
    # A new scope or structure means the stored WBS may hold the wrong tasks: re-read them all.
    rescope = (box["scope"] != current["scope"] or box["builders"] != current["builders"]
               or box["scopeOwner"] != current["scopeOwner"] or box["parentId"] != current["parentId"])
    await conn.execute(scope.update(boxes).where(boxes.c.id == box_id).values(
        updated_at=now(), **values, **({"needs_full_sync": True} if rescope else {})))
    return await get(conn, scope, box_id)


async def delete(conn: AsyncConnection, scope: Scope, box_id: int) -> None:
    await row(conn, scope, box_id)
    if await children(conn, scope, box_id):
        raise Conflict("this Box has sub-Boxes: move or delete them first")
    await conn.execute(scope.delete(boxes).where(boxes.c.id == box_id))  # its WBS and sync state cascade


async def mark_opened(conn: AsyncConnection, scope: Scope, box_id: int) -> None:
    await conn.execute(scope.update(boxes).where(boxes.c.id == box_id).values(
        open_count=boxes.c.open_count + 1, last_opened_at=now()))


async def boxes_holding(conn: AsyncConnection, scope: Scope, issue_id: int,
                        connection_id: int = PRIMARY) -> list[dict[str, Any]]:
    """The Boxes whose stored WBS holds the issue, the most used first."""
    stmt = (scope.select(boxes).join(wbs_nodes, sa.and_(wbs_nodes.c.tenant_id == boxes.c.tenant_id,
                                                        wbs_nodes.c.box_id == boxes.c.id))
            .where(scope.filter(wbs_nodes), wbs_nodes.c.kind == "issue", wbs_nodes.c.issue_id == issue_id,
                   wbs_nodes.c.connection_id == connection_id)
            .order_by(boxes.c.open_count.desc(), boxes.c.last_opened_at.desc(), boxes.c.name))
    return [model.box_json(r._mapping) for r in (await conn.execute(stmt)).all()]


# -- the stored WBS ---------------------------------------------------------------------------------

def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def node_json(node: Any, visible: bool) -> dict[str, Any]:
    """A stored WBS node (a `wbs_rows` row) as the API writes it. A task the viewer may not browse
    in Jira appears as a restricted placeholder: its place in the tree, none of its fields."""
    out: dict[str, Any] = {
        "id": node.node_id, "parentId": node.parent_node_id, "position": node.position, "kind": node.kind,
        "issueId": None, "issueKey": None, "summary": node.label, "start": _iso(node.start_date),
        "end": _iso(node.end_date), "status": None, "statusCategory": None, "progress": None,
        "taskMode": None,
    }
    if node.kind != "issue":
        return out
    out["issueId"] = str(node.issue_id)
    if node.issue_key is None or not visible:
        out.update(summary=None, start=None, end=None, restricted=True)
        return out
    out.update(issueKey=node.issue_key, summary=node.summary, start=_iso(node.task_start),
               end=_iso(node.task_end), status=node.status, statusCategory=node.status_category,
               progress=node.progress, taskMode=node.task_mode, issueType=node.issue_type,
               assignee=node.assignee_name, projectKey=node.project_key, restricted=False)
    return out


def hide_empty_groups(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A group (project, version, sprint, component) holding no task the viewer may see shows no
    name either: its name would tell what the hidden work is. `nodes` in tree order (parents first)."""
    shown: set[str] = set()
    for node in reversed(nodes):  # children before parents
        if (node["kind"] == "issue" and not node.get("restricted")) or node["id"] in shown:
            if node["parentId"] is not None:
                shown.add(node["parentId"])
    for node in nodes:
        if node["kind"] != "issue" and node["id"] not in shown:
            node.update(summary=None, start=None, end=None, restricted=True)
    return nodes


async def wbs_rows(conn: AsyncConnection, scope: Scope, box_id: int) -> list[Any]:
    """The Box's stored WBS nodes joined with their tasks, in tree order (tree_order)."""
    joined = wbs_nodes.outerjoin(tasks, sa.and_(tasks.c.tenant_id == wbs_nodes.c.tenant_id,
                                               tasks.c.connection_id == wbs_nodes.c.connection_id,
                                               tasks.c.issue_id == wbs_nodes.c.issue_id))
    stmt = (sa.select(wbs_nodes, tasks.c.issue_key, tasks.c.summary, tasks.c.start_date.label("task_start"),
                      tasks.c.end_date.label("task_end"), tasks.c.status, tasks.c.status_category,
                      tasks.c.progress, tasks.c.task_mode, tasks.c.issue_type, tasks.c.assignee_name,
                      tasks.c.project_key, tasks.c.project_id)
            .select_from(joined)
            .where(scope.filter(wbs_nodes), _task_scope(scope), wbs_nodes.c.box_id == box_id)
            .execution_options(tenant_id=scope.tenant_id))
    return tree_order((await conn.execute(stmt)).all())


def tree_order(rows: list[Any]) -> list[Any]:
    """Depth-first: every node after its parent, siblings by position."""
    kids: dict[str | None, list[Any]] = {}
    for r in rows:
        kids.setdefault(r.parent_node_id, []).append(r)
    for siblings in kids.values():
        siblings.sort(key=lambda r: r.position)
    out: list[Any] = []
    stack = list(reversed(kids.get(None, [])))
    while stack:
        r = stack.pop()
        out.append(r)
        stack.extend(reversed(kids.get(r.node_id, [])))
    return out


async def dependencies(conn: AsyncConnection, scope: Scope, box_id: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(scope.select(box_dependencies).where(box_dependencies.c.box_id == box_id)
                               .order_by(box_dependencies.c.link_id))).all()
    return [{"fromIssueId": str(r.from_issue_id), "toIssueId": str(r.to_issue_id), "type": r.type,
             "linkId": str(r.link_id)} for r in rows]


async def issue_project(conn: AsyncConnection, scope: Scope, issue_id: int,
                        connection_id: int = PRIMARY) -> int | None:
    return (await conn.execute(scope.select(tasks, tasks.c.project_id).where(
        tasks.c.connection_id == connection_id, tasks.c.issue_id == issue_id))).scalar()


def _task_scope(scope: Scope) -> sa.ColumnElement[bool]:
    """The tenant criterion for the outer-joined task (absent for group nodes)."""
    return sa.or_(scope.filter(tasks), tasks.c.tenant_id.is_(None))
