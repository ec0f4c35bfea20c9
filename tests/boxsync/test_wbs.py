"""Structure builders (boxes/wbs.py), tested directly: each builder, their combinations and
conflicts, cycles, deep chains, and properties that hold for any input."""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxsync.boxes import wbs
from boxsync.boxes.wbs import BuilderError, Group, Link, TaskFacts, build, parse_builders

P1, P2 = Group(1, "Alpha", ("ALPHA",)), Group(2, "Beta", ("BETA",))
V1, V2, V3 = Group(11, "v1", ("2026-01-01",)), Group(12, "v2", ("2026-02-01",)), Group(13, "v3", ("2026-03-01",))
S1, S2 = Group(21, "Sprint 1", ("2026-01-01",)), Group(22, "Sprint 2", ("2026-01-15",))
C1, C2 = Group(31, "Backend", ("backend",)), Group(32, "Frontend", ("frontend",))
RELATES = 10003


def task(i: int, *, parent: int | None = None, project: Group = P1, versions=(), sprints=(), components=(),
         links=(), level: int = 0) -> TaskFacts:
    return TaskFacts(issue_id=i, key=f"{project.rank[0]}-{i}", order=(project.rank[0], i), hierarchy_level=level,
                     parent_id=parent, project=project, versions=tuple(versions), sprints=tuple(sprints),
                     components=tuple(components), links=tuple(links))


def link(lid: int, source: int, destination: int, type_id: int = RELATES) -> Link:
    return Link(lid, type_id, source, destination)


def tree(nodes: list[wbs.Node]) -> dict[str | None, list[str]]:
    """parent id → child ids in position order."""
    out: dict[str | None, list[str]] = {}
    for n in sorted(nodes, key=lambda n: n.position):
        out.setdefault(n.parent_id, []).append(n.id)
    return out


def check_shape(nodes: list[wbs.Node], tasks: list[TaskFacts]) -> None:
    """What holds for every WBS: each task once, parents first, contiguous positions."""
    issue_ids = [n.issue_id for n in nodes if n.kind == "issue"]
    assert sorted(issue_ids) == sorted(t.issue_id for t in tasks)
    seen: set[str] = set()
    for n in nodes:
        assert n.id not in seen
        assert n.parent_id is None or n.parent_id in seen, f"{n.id} before its parent {n.parent_id}"
        seen.add(n.id)
    positions: dict[str | None, list[int]] = {}
    for n in nodes:
        positions.setdefault(n.parent_id, []).append(n.position)
    for numbers in positions.values():
        assert sorted(numbers) == list(range(len(numbers)))


# -- parse_builders ----------------------------------------------------------------------------------

def test_parse_builders_accepts_the_known_names_and_link_types():
    assert parse_builders(["project", "version", "sprint", "component", "jira-parent", "link:10003"]) == (
        "project", "version", "sprint", "component", "jira-parent", "link:10003")
    assert parse_builders([]) == ()


@pytest.mark.parametrize("names, says", [
    (["projects"], "'projects' is not a structure builder"),
    (["project", "project"], "listed twice"),
    (["link:"], "link:<issue link type id>"),
    (["link:abc"], "link:<issue link type id>"),
    (["link:1/2"], "link:<issue link type id>"),
    (["link:10003", "link:10003"], "listed twice"),
    ([3], "entry 1 is not a builder name"),
])
def test_parse_builders_names_the_bad_entry(names, says):
    with pytest.raises(BuilderError, match=says.replace("(", r"\(").replace("[", r"\[")):
        parse_builders(names)


# -- single builders -----------------------------------------------------------------------------------

def test_no_builders_lists_every_task_at_the_top_in_order():
    tasks = [task(3), task(1), task(2, project=P2)]
    nodes = build(tasks, [])
    assert tree(nodes) == {None: ["issue:1", "issue:3", "issue:2"]}  # ALPHA-1, ALPHA-3, BETA-2
    assert all(n.kind == "issue" and n.group is None for n in nodes)


def test_project_groups_in_rank_order():
    nodes = build([task(1, project=P2), task(2), task(3, project=P2)], ["project"])
    assert tree(nodes) == {None: ["project:1", "project:2"], "project:1": ["issue:2"],
                           "project:2": ["issue:1", "issue:3"]}
    assert nodes[0].group == P1 and nodes[0].kind == "project"


def test_multi_valued_tasks_go_in_one_group_each():
    tasks = [task(1, versions=[V2, V1]), task(2, sprints=[S1, S2]), task(3, components=[C2, C1]), task(4)]
    by_version = tree(build(tasks, ["version"]))
    assert by_version[None] == ["version:11", "issue:2", "issue:3", "issue:4"]  # earliest version
    assert by_version["version:11"] == ["issue:1"]
    by_sprint = tree(build(tasks, ["sprint"]))
    assert by_sprint["sprint:22"] == ["issue:2"]  # the latest sprint: where it was carried over to
    by_component = tree(build(tasks, ["component"]))
    assert by_component["component:31"] == ["issue:3"]  # the first component


def test_tasks_without_a_value_follow_the_groups():
    nodes = build([task(1), task(2, versions=[V3]), task(3, versions=[V1])], ["version"])
    assert tree(nodes)[None] == ["version:11", "version:13", "issue:1"]


def test_jira_parent_builds_epics_stories_and_subtasks():
    tasks = [task(1, level=1), task(2, parent=1), task(3, parent=1), task(4, parent=2, level=-1), task(5)]
    nodes = build(tasks, ["jira-parent"])
    assert tree(nodes) == {None: ["issue:1", "issue:5"], "issue:1": ["issue:2", "issue:3"], "issue:2": ["issue:4"]}


def test_a_parent_outside_the_box_makes_a_root():
    nodes = build([task(2, parent=99), task(3, parent=2)], ["jira-parent"])
    assert tree(nodes) == {None: ["issue:2"], "issue:2": ["issue:3"]}


def test_link_builder_outward_side_is_the_parent():
    l1, l2 = link(100, 1, 2), link(101, 1, 3)
    tasks = [task(1, links=[l1, l2]), task(2, links=[l1]), task(3, links=[l2]), task(4)]
    nodes = build(tasks, [f"link:{RELATES}"])
    assert tree(nodes) == {None: ["issue:1", "issue:4"], "issue:1": ["issue:2", "issue:3"]}
    # Links of other types are not structure.
    assert tree(build(tasks, ["link:10000"])) == {None: ["issue:1", "issue:2", "issue:3", "issue:4"]}


def test_several_link_parents_the_first_by_order_wins():
    a, b = link(200, 5, 1), link(100, 3, 1)  # 1 is the inward side of both: parents 3 and 5
    tasks = [task(1, links=[a, b]), task(3, links=[b]), task(5, links=[a])]
    assert tree(build(tasks, [f"link:{RELATES}"]))["issue:3"] == ["issue:1"]


# -- cycles --------------------------------------------------------------------------------------------

def test_a_self_link_is_ignored():
    tasks = [task(1, links=[link(1, 1, 1)])]
    assert tree(build(tasks, [f"link:{RELATES}"])) == {None: ["issue:1"]}


@pytest.mark.parametrize("size", [2, 3, 5])
def test_a_cycle_is_broken_at_its_smallest_member(size):
    ids = [10 * (i + 1) for i in range(size)]
    edges = [link(500 + i, ids[i], ids[(i + 1) % size]) for i in range(size)]  # 10→20→…→10
    tasks = [task(i, links=[e for e in edges if i in (e.source_id, e.destination_id)]) for i in ids]
    for shuffled in (tasks, list(reversed(tasks))):
        nodes = build(shuffled, [f"link:{RELATES}"])
        check_shape(nodes, tasks)
        shape = tree(nodes)
        assert shape[None] == ["issue:10"]  # the smallest member lost its parent edge
        chain = [shape[f"issue:{ids[i]}"] for i in range(size - 1)]
        assert chain == [[f"issue:{ids[i + 1]}"] for i in range(size - 1)]


def test_a_jira_parent_cycle_is_broken_too():
    nodes = build([task(1, parent=2), task(2, parent=1)], ["jira-parent"])
    assert tree(nodes) == {None: ["issue:1"], "issue:1": ["issue:2"]}


# -- combinations and conflicts --------------------------------------------------------------------------

def test_project_version_parent():
    tasks = [task(1, level=1, versions=[V1]), task(2, parent=1, versions=[V1]), task(3, parent=1),
             task(4, project=P2, versions=[V1])]
    shape = tree(build(tasks, ["project", "version", "jira-parent"]))
    assert shape[None] == ["project:1", "project:2"]
    assert shape["project:1"] == ["project:1/version:11", "issue:3"]  # 3's parent sits elsewhere: a root
    assert shape["project:1/version:11"] == ["issue:1"] and shape["issue:1"] == ["issue:2"]
    assert shape["project:2"] == ["project:2/version:11"]  # the same version, another branch


def test_grouping_after_a_hierarchy_groups_the_roots_with_their_subtrees():
    tasks = [task(1, level=1, components=[C2]), task(2, parent=1, components=[C1]), task(3, components=[C1])]
    shape = tree(build(tasks, ["jira-parent", "component"]))
    assert shape[None] == ["component:31", "component:32"]
    assert shape["component:31"] == ["issue:3"]
    assert shape["component:32"] == ["issue:1"] and shape["issue:1"] == ["issue:2"]  # 2 stays with its epic


def test_an_earlier_hierarchy_builder_wins_over_a_later_one():
    rel = link(300, 3, 2)  # by links, 2 would go under 3
    tasks = [task(1), task(2, parent=1, links=[rel]), task(3, links=[rel])]
    shape = tree(build(tasks, ["jira-parent", f"link:{RELATES}"]))
    assert shape["issue:1"] == ["issue:2"] and shape[None] == ["issue:1", "issue:3"]


def test_a_later_link_builder_nests_roots_with_their_subtrees():
    rel = link(300, 3, 1)  # 1 (an epic with a child) under 3
    tasks = [task(1, level=1, links=[rel]), task(2, parent=1), task(3, links=[rel])]
    shape = tree(build(tasks, ["jira-parent", f"link:{RELATES}"]))
    assert shape == {None: ["issue:3"], "issue:3": ["issue:1"], "issue:1": ["issue:2"]}


def test_duplicate_tasks_are_refused():
    with pytest.raises(ValueError, match="given twice"):
        build([task(1), task(1)], [])


def test_a_10000_deep_chain_builds_without_recursion():
    tasks = [task(i, parent=i - 1 if i > 1 else None) for i in range(1, 10_001)]
    nodes = build(tasks, ["jira-parent"])
    check_shape(nodes, tasks)
    assert nodes[-1].parent_id == "issue:9999"


def test_node_ids_are_stable_across_builds():
    tasks = [task(1, versions=[V1]), task(2, project=P2, sprints=[S1])]
    first = build(tasks, ["project", "version", "sprint"])
    assert first == build(list(reversed(tasks)), ["project", "version", "sprint"])
    assert {n.id for n in first} == {"project:1", "project:2", "project:1/version:11", "project:2/sprint:21",
                                     "issue:1", "issue:2"}


# -- properties ------------------------------------------------------------------------------------------

BUILDER_CHOICES = ["project", "version", "sprint", "component", "jira-parent", f"link:{RELATES}", "link:10000"]


@st.composite
def worlds(draw):
    n = draw(st.integers(min_value=0, max_value=40))
    ids = draw(st.lists(st.integers(min_value=1, max_value=500), min_size=n, max_size=n, unique=True))
    links = []
    for k in range(draw(st.integers(min_value=0, max_value=2 * n))):
        if len(ids) >= 1:
            links.append(Link(1000 + k, draw(st.sampled_from([RELATES, 10000])), draw(st.sampled_from(ids)),
                              draw(st.sampled_from(ids))))
    groups = {"versions": [V1, V2, V3], "sprints": [S1, S2], "components": [C1, C2]}
    tasks = []
    for i in ids:
        tasks.append(task(
            i, parent=draw(st.one_of(st.none(), st.sampled_from(ids + [9999]))), project=draw(st.sampled_from([P1, P2])),
            versions=draw(st.lists(st.sampled_from(groups["versions"]), unique=True, max_size=2)),
            sprints=draw(st.lists(st.sampled_from(groups["sprints"]), unique=True, max_size=2)),
            components=draw(st.lists(st.sampled_from(groups["components"]), unique=True, max_size=2)),
            links=[l for l in links if i in (l.source_id, l.destination_id)]))
    builders = draw(st.lists(st.sampled_from(BUILDER_CHOICES), unique=True, max_size=4))
    seed = draw(st.integers(min_value=0, max_value=2**32))
    return tasks, builders, seed


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_any_input_gives_a_well_formed_wbs_whatever_its_order(world):
    tasks, builders, seed = world
    nodes = build(tasks, builders)
    check_shape(nodes, tasks)
    shuffled = list(tasks)
    random.Random(seed).shuffle(shuffled)
    assert build(shuffled, builders) == nodes


def test_speed_figure_for_100k_tasks(capsys):
    """Not a timed assertion: prints the figure (bench/full_sync.py measures the whole sync)."""
    rng = random.Random(1)
    versions = [Group(100 + v, f"v{v}", (f"2026-{v + 1:02d}-01",)) for v in range(6)]
    tasks = []
    for i in range(1, 100_001):
        level = 1 if i % 50 == 1 else 0
        parent = None if level else (i - (i - 1) % 50)
        tasks.append(task(i, parent=parent, level=level, project=P1 if i % 2 else P2,
                          versions=[rng.choice(versions)] if i % 3 else []))
    started = time.perf_counter()
    nodes = build(tasks, ["project", "version", "jira-parent"])
    elapsed = time.perf_counter() - started
    check_shape(nodes, tasks)
    with capsys.disabled():
        print(f"\n  wbs.build: 100,000 tasks, [project, version, jira-parent]: {elapsed * 1000:.0f} ms")
