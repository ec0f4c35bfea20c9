"""Structure builders: a Box's tasks arranged in a Work Breakdown Structure. Pure: no I/O.

    nodes = build(tasks, ["project", "version", "jira-parent"])

Builders apply in the order the Box lists them, each one level of the tree (the first decides the
highest level, bigpicture-and-jira.md 1.3):

* Grouping builders (`project`, `version`, `sprint`, `component`) partition the tasks of the
  current level into group nodes. A task with several values goes in exactly one group, the same
  every time: the earliest version, the first component, the latest sprint (the one an issue was
  carried over into). Tasks with no value stay at this level, after the groups. Groups are ordered
  by their rank (set by the caller: release date, start date, name), then name, then id.
* Hierarchy builders (`jira-parent`: epics, parents and sub-tasks; `link:<link type id>`: the
  link's outward side is the parent of its inward side) build a forest of the tasks of the current
  level: a task whose parent is among them goes under it; a task whose parent is not in the Box, or
  sits elsewhere in the tree (placed by an earlier builder), is a root. The builders after a
  hierarchy builder apply to its roots; each root carries its subtree along.
* A task has one parent per hierarchy builder: for a link builder, the first by (parent's order,
  link id). Cycles are broken deterministically: in each cycle, the member with the smallest
  (order, issue id) loses its parent edge and becomes a root.
* A task appears exactly once. Nodes come out parents first; siblings are numbered 0..n-1.

Node ids are stable across syncs: `issue:<id>` for issues, and for groups the path of groups
above them, so the same version under two projects gives two nodes
(`project:10000/version:10001`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

GROUPING = ("project", "version", "sprint", "component")
HIERARCHY = ("jira-parent",)
BUILDERS = GROUPING + HIERARCHY
LINK_PREFIX = "link:"


class BuilderError(ValueError):
    """A list of structure builders that cannot be used; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Group:
    """A project, version, sprint or component value of a task."""
    id: int
    name: str
    rank: tuple = ()  # sort key among groups of one kind (the caller's: release date, start date, …)
    start: str | None = None  # ISO dates: versions and sprints carry them
    end: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    type_id: int
    source_id: int  # the issue on the link's outward side: "source <outward> destination"
    destination_id: int


@dataclass(frozen=True, slots=True)
class TaskFacts:
    issue_id: int
    key: str
    order: tuple  # sibling order among issues (the caller's: project key, issue number)
    hierarchy_level: int  # Jira's: epic 1, standard 0, sub-task -1
    parent_id: int | None  # Jira's parent; may be outside the Box
    project: Group
    versions: tuple[Group, ...] = ()
    sprints: tuple[Group, ...] = ()
    components: tuple[Group, ...] = ()
    links: tuple[Link, ...] = ()  # links touching this issue (one may appear on both its ends)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent_id: str | None
    position: int
    kind: str  # "issue" | "project" | "version" | "sprint" | "component"
    issue_id: int | None
    group: Group | None


def parse_builders(names: Sequence[str]) -> tuple[str, ...]:
    """The builders as given, checked: known names, `link:<digits>`, none twice."""
    seen: set[str] = set()
    for position, name in enumerate(names):
        if not isinstance(name, str):
            raise BuilderError(f"entry {position + 1} is not a builder name")
        if name.startswith(LINK_PREFIX):
            type_id = name[len(LINK_PREFIX):]
            if not (type_id.isascii() and type_id.isdigit()) or len(type_id) > 18:
                raise BuilderError(f"{name[:40]!r}: a link builder is link:<issue link type id>, e.g. link:10003")
        elif name not in BUILDERS:
            raise BuilderError(f"{name[:40]!r} is not a structure builder "
                               f"({', '.join(BUILDERS)}, or link:<issue link type id>)")
        if name in seen:
            raise BuilderError(f"{name!r} is listed twice: a task can be placed by a builder only once")
        seen.add(name)
    return tuple(names)


# -- grouping ------------------------------------------------------------------------------------------

def _group_key(g: Group) -> tuple:
    return (g.rank, g.name, g.id)


def _pick(builder: str, task: TaskFacts) -> Group | None:
    """The one group of `builder` the task goes in (None: it has no value)."""
    if builder == "project":
        return task.project
    values = {"version": task.versions, "sprint": task.sprints, "component": task.components}[builder]
    if not values:
        return None
    ordered = sorted(values, key=_group_key)
    return ordered[-1] if builder == "sprint" else ordered[0]


# -- hierarchies ---------------------------------------------------------------------------------------

def _parents(builder: str, tasks: Sequence[TaskFacts], members: set[int],
             by_id: dict[int, TaskFacts]) -> dict[int, int]:
    """child → parent among `members`, for a hierarchy builder, before breaking cycles."""
    parent: dict[int, int] = {}
    if builder == "jira-parent":
        for t in tasks:
            if t.parent_id is not None and t.parent_id in members and t.parent_id != t.issue_id:
                parent[t.issue_id] = t.parent_id
        return parent
    type_id = int(builder[len(LINK_PREFIX):])
    best: dict[int, tuple] = {}
    for t in tasks:
        for link in t.links:
            if link.type_id != type_id or link.destination_id != t.issue_id:
                continue
            src = link.source_id
            if src not in members or src == t.issue_id:
                continue
            key = (by_id[src].order, src, link.id)
            if t.issue_id not in best or key < best[t.issue_id]:
                best[t.issue_id] = key
                parent[t.issue_id] = src
    return parent


def _break_cycles(parent: dict[int, int], rank: Callable[[int], tuple]) -> None:
    """Remove, in each cycle, the parent edge of its smallest member (by `rank`). In place."""
    state: dict[int, int] = {}  # 1: on the current walk, 2: done
    for start in sorted(parent, key=rank):
        path: list[int] = []
        node: int | None = start
        while node is not None and node in parent and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = parent[node]
        if node is not None and state.get(node) == 1:  # walked into this walk's own path: a cycle
            cycle = path[path.index(node):]
            del parent[min(cycle, key=rank)]
        for n in path:
            state[n] = 2


# -- building ------------------------------------------------------------------------------------------

def build(tasks: Iterable[TaskFacts], builders: Sequence[str]) -> list[Node]:
    """The WBS: nodes, parents before children. Deterministic for the same tasks in any order."""
    builders = parse_builders(builders)
    by_id: dict[int, TaskFacts] = {}
    for t in tasks:
        if t.issue_id in by_id:
            raise ValueError(f"issue {t.issue_id} given twice")
        by_id[t.issue_id] = t

    ranks = {i: (t.order, i) for i, t in by_id.items()}
    rank = ranks.__getitem__

    out: list[Node] = []
    counts: dict[str | None, int] = {}
    # Children each issue got from a hierarchy builder, in order; every task is placed once, so one
    # map serves the whole tree.
    below: dict[int, list[int]] = {}

    def emit(node_id: str, parent: str | None, kind: str, issue_id: int | None, group: Group | None) -> None:
        position = counts.get(parent, 0)
        counts[parent] = position + 1
        out.append(Node(node_id, parent, position, kind, issue_id, group))

    # Work items: (the tasks of one context in order, the parent node, the group path above, the
    # index of the next builder). An explicit stack, so that a 10,000-level hierarchy never touches
    # Python's recursion limit.
    stack: list[tuple[list[int], str | None, str, int]] = [(sorted(by_id, key=rank), None, "", 0)]
    while stack:
        members, parent_node, path, index = stack.pop()
        if index == len(builders):
            _emit_issues(members, parent_node, below, emit)
            continue
        builder = builders[index]
        if builder in GROUPING:
            groups: dict[int, tuple[Group, list[int]]] = {}
            loose: list[int] = []
            for issue_id in members:
                g = _pick(builder, by_id[issue_id])
                if g is None:
                    loose.append(issue_id)
                else:
                    groups.setdefault(g.id, (g, []))[1].append(issue_id)
            pending = []
            for g, grouped in sorted(groups.values(), key=lambda item: _group_key(item[0])):
                node_id = f"{path}/{builder}:{g.id}" if path else f"{builder}:{g.id}"
                emit(node_id, parent_node, builder, None, g)
                pending.append((grouped, node_id, node_id, index + 1))
            if loose:  # after the groups, at this level
                pending.append((loose, parent_node, path, index + 1))
            stack.extend(reversed(pending))
            continue
        # A hierarchy builder: a forest over this context's tasks. Their subtrees from earlier
        # hierarchy builders stay attached; only the roots are placed by this and later builders.
        parent_of = _parents(builder, [by_id[i] for i in members], set(members), by_id)
        _break_cycles(parent_of, rank)
        added: dict[int, list[int]] = {}
        for child, parent in parent_of.items():
            added.setdefault(parent, []).append(child)
        for parent, kids in added.items():
            below.setdefault(parent, []).extend(sorted(kids, key=rank))
        stack.append(([i for i in members if i not in parent_of], parent_node, path, index + 1))
    return out


def _emit_issues(members: list[int], parent_node: str | None, below: dict[int, list[int]],
                 emit: Callable[..., None]) -> None:
    """Issue nodes for `members` (in order) under `parent_node`, each followed by its subtree."""
    todo: list[tuple[int, str | None]] = [(i, parent_node) for i in reversed(members)]
    while todo:
        issue_id, parent = todo.pop()
        node_id = f"issue:{issue_id}"
        emit(node_id, parent, "issue", issue_id, None)
        todo.extend((child, node_id) for child in reversed(below.get(issue_id, [])))
