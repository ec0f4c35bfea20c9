"""What the WBS issue panel shows: the issue's place in one Box's stored WBS.

Read straight from the stored nodes with a handful of indexed lookups (the issue's node, its
ancestors, siblings and children), never the whole tree, so it answers at once in a large Box.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from boxsync.boxes.tables import PRIMARY, tasks, wbs_nodes
from boxsync.tenancy import Scope

MAX_DEPTH = 200  # a WBS deeper than this is cut (the builders never make one; a guard, not a rule)
MAX_SIBLINGS = 200  # the panel is narrow: the rest are counted, not listed


def _select(scope: Scope) -> sa.Select:
    joined = wbs_nodes.outerjoin(tasks, sa.and_(tasks.c.tenant_id == wbs_nodes.c.tenant_id,
                                               tasks.c.connection_id == wbs_nodes.c.connection_id,
                                               tasks.c.issue_id == wbs_nodes.c.issue_id))
    return (sa.select(wbs_nodes, tasks.c.issue_key, tasks.c.summary, tasks.c.start_date.label("task_start"),
                      tasks.c.end_date.label("task_end"), tasks.c.status, tasks.c.status_category,
                      tasks.c.progress, tasks.c.task_mode, tasks.c.issue_type, tasks.c.assignee_name,
                      tasks.c.project_key, tasks.c.project_id)
            .select_from(joined).where(scope.filter(wbs_nodes), _task_scope(scope)).execution_options(tenant_id=scope.tenant_id))


async def place(conn: AsyncConnection, scope: Scope, box_id: int, issue_id: int,
                connection_id: int = PRIMARY) -> dict[str, Any] | None:
    """{node, ancestors (top first), siblings, children, siblingCount, childCount} as stored rows,
    or None when the Box's WBS does not hold the issue."""
    base = _select(scope).where(wbs_nodes.c.box_id == box_id)
    node = (await conn.execute(base.where(wbs_nodes.c.kind == "issue", wbs_nodes.c.issue_id == issue_id,
                                          wbs_nodes.c.connection_id == connection_id))).first()
    if node is None:
        return None
    ancestors = []
    parent = node.parent_node_id
    while parent is not None and len(ancestors) < MAX_DEPTH:
        row = (await conn.execute(base.where(wbs_nodes.c.node_id == parent))).first()
        if row is None:
            break
        ancestors.append(row)
        parent = row.parent_node_id
    ancestors.reverse()
    siblings_of = (wbs_nodes.c.parent_node_id.is_(None) if node.parent_node_id is None
                   else wbs_nodes.c.parent_node_id == node.parent_node_id)
    siblings = (await conn.execute(base.where(siblings_of).order_by(wbs_nodes.c.position)
                                   .limit(MAX_SIBLINGS + 1))).all()
    children = (await conn.execute(base.where(wbs_nodes.c.parent_node_id == node.node_id)
                                   .order_by(wbs_nodes.c.position).limit(MAX_SIBLINGS + 1))).all()
    return {"node": node, "ancestors": ancestors, "siblings": siblings[:MAX_SIBLINGS],
            "children": children[:MAX_SIBLINGS], "moreSiblings": len(siblings) > MAX_SIBLINGS,
            "moreChildren": len(children) > MAX_SIBLINGS}


def _task_scope(scope: Scope) -> sa.ColumnElement[bool]:
    """The tenant criterion for the outer-joined task (absent for group nodes)."""
    return sa.or_(scope.filter(tasks), tasks.c.tenant_id.is_(None))
