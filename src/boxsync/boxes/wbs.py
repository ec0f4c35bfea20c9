"""PLACEHOLDER until the structure builders land (branch h-wbs): the interface only, every task
at the top level. Replaced wholesale by the real module."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

BUILDERS = ("project", "version", "sprint", "component", "jira-parent")


class BuilderError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    rank: tuple = ()
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    type_id: int
    source_id: int
    destination_id: int


@dataclass(frozen=True, slots=True)
class TaskFacts:
    issue_id: int
    key: str
    order: tuple
    hierarchy_level: int
    parent_id: int | None
    project: Group
    versions: tuple = ()
    sprints: tuple = ()
    components: tuple = ()
    links: tuple = ()


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent_id: str | None
    position: int
    kind: str
    issue_id: int | None
    group: Group | None


def parse_builders(names: Sequence[str]) -> tuple[str, ...]:
    if len(set(names)) != len(names):
        raise BuilderError("a structure builder is listed twice")
    for n in names:
        if n not in BUILDERS and not (isinstance(n, str) and n.startswith("link:") and n[5:].isdigit()):
            raise BuilderError(f"unknown structure builder {n!r}")
    return tuple(names)


def build(tasks: Iterable[TaskFacts], builders: Sequence[str]) -> list[Node]:
    ordered = sorted(tasks, key=lambda t: (t.order, t.issue_id))
    return [Node(f"issue:{t.issue_id}", None, i, "issue", t.issue_id, None) for i, t in enumerate(ordered)]
