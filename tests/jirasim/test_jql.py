"""The JQL subset: parsing, evaluation against a generated site, and Jira-like errors."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jirasim import jql
from jirasim.generator import populate
from jirasim.render import EVENTS
from jirasim.model import Site


@pytest.fixture(scope="module")
def site() -> Site:
    s = Site("jql", "http://jira.test")
    populate(s, issues=2000, seed=11)
    return s


def ids(site: Site, text: str) -> list[int]:
    return jql.search(site, text)


def test_project_equals_and_in(site: Site) -> None:
    alpha = ids(site, "project = ALPHA")
    assert alpha and all(site.issues[i].project_id == 10000 for i in alpha)
    both = ids(site, "project in (ALPHA, 'BRAVO')")
    assert len(both) == len(site.issues)
    assert set(ids(site, "project = 10000")) == set(alpha)
    assert set(ids(site, "project != ALPHA")) == set(both) - set(alpha)


def test_key_issue_id_and_old_keys(site: Site) -> None:
    first = site.issue("ALPHA-1")
    assert ids(site, "key = ALPHA-1") == [first.id]
    assert ids(site, f"id = {first.id}") == [first.id]
    assert set(ids(site, 'issue in (ALPHA-1, "ALPHA-2")')) == {first.id, site.issue("ALPHA-2").id}
    assert set(ids(site, "issuekey in (ALPHA-1) OR key = ALPHA-3")) == {first.id, site.issue("ALPHA-3").id}


def test_type_status_category_parent(site: Site) -> None:
    epics = ids(site, "issuetype = Epic")
    assert epics and all(site.issues[i].issuetype_id == 10000 for i in epics)
    done = ids(site, 'statusCategory = Done')
    assert done and all(site.statuses[site.issues[i].status_id].category == "done" for i in done)
    assert set(ids(site, "statusCategory = done")) == set(done) == set(ids(site, "statusCategory = 3"))
    in_progress = ids(site, 'status = "In Progress"')
    assert all(site.issues[i].status_id == 3 for i in in_progress)
    epic = site.issues[epics[0]]
    kids = ids(site, f"parent in ({epic.key})")
    assert set(kids) == set(site.children.get(epic.id, []))
    assert set(ids(site, f"parent = {epic.id}")) == set(kids)
    sub = ids(site, "type = Sub-task")
    assert all(site.issues[i].parent_id is not None for i in sub)


def test_updated_comparisons(site: Site) -> None:
    cut = datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp() * 1000
    after = set(ids(site, 'updated >= "2025-06-01"'))
    before = set(ids(site, 'updated < "2025-06-01"'))
    assert after and before and after.isdisjoint(before) and len(after | before) == len(site.issues)
    assert all(site.issues[i].updated >= cut for i in after)
    assert set(ids(site, 'updated > "2025-06-01 00:00"')) <= after
    assert set(ids(site, "updated <= '2025/06/01 12:30'")) >= before
    assert ids(site, "updated >= -1d AND project = ALPHA") == []  # generated data is older


def test_boolean_logic_and_precedence(site: Site) -> None:
    a = set(ids(site, "project = ALPHA AND issuetype = Epic OR issuetype = Bug"))
    b = set(ids(site, "(project = ALPHA AND issuetype = Epic) OR issuetype = Bug"))
    c = set(ids(site, "project = ALPHA AND (issuetype = Epic OR issuetype = Bug)"))
    assert a == b and c < a
    assert set(ids(site, "project = ALPHA AND NOT issuetype = Epic")) == \
        set(ids(site, "project = ALPHA")) - set(ids(site, "issuetype = Epic"))
    assert set(ids(site, "project = ALPHA && !(issuetype = Epic)")) == set(ids(site, "project = ALPHA AND issuetype != Epic"))
    assert set(ids(site, "project = alpha and issuetype not in (Epic, Story)")) == \
        set(ids(site, "project = ALPHA")) - set(ids(site, "issuetype in (Epic, Story)"))


def test_order_by(site: Site) -> None:
    by_key = ids(site, "project = ALPHA ORDER BY key ASC")
    numbers = [int(site.issues[i].key.split("-")[1]) for i in by_key]
    assert numbers == sorted(numbers)  # numeric, not lexicographic
    by_updated = ids(site, "project = BRAVO order by updated desc, key")
    stamps = [site.issues[i].updated for i in by_updated]
    assert stamps == sorted(stamps, reverse=True)
    default = ids(site, "project = BRAVO")
    assert default == sorted(default, reverse=True)  # newest first


def test_unbounded_queries_parse_but_are_flagged() -> None:
    assert not jql.is_bounded(jql.parse(""))
    assert not jql.is_bounded(jql.parse("ORDER BY key DESC"))
    assert jql.is_bounded(jql.parse("project = X ORDER BY key"))


@pytest.mark.parametrize(("text", "message"), [
    ("project = ", "Error in the JQL Query: Expecting either a value, list or function but got '<EOF>'"),
    ("project = ALPHA AND", "Error in the JQL Query: Expecting a field name"),
    ("project in (ALPHA", "Error in the JQL Query: Expecting ')'"),
    ("project ALPHA", "Error in the JQL Query: Expecting operator but got 'ALPHA'"),
    ("project = OR", "You must surround 'OR' in quotation marks"),
    ('summary ~ "x"', "Error in the JQL Query: Field 'summary' is not supported"),
    ("project in openSprints()", "Error in the JQL Query: Functions are not supported"),
    ("project in ALPHA", "Error in the JQL Query: Expecting '(' but got 'ALPHA'"),
    ("issue in linkedIssues(ALPHA-1)", "Functions are not supported"),
    ("nosuchfield = 1", "Field 'nosuchfield' does not exist"),
    ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
    ("status = Nope", "The value 'Nope' does not exist for the field 'status'."),
    ("key = ALPHA-999999", "An issue with key 'ALPHA-999999' does not exist for field 'key'."),
    ("updated > yesterday", "Date value 'yesterday' for field 'updated' is invalid"),
    ("status > Done", "The operator '>' is not supported by the 'status' field."),
    ('project = "ALPHA', "Error in the JQL Query"),
    ("project = ALPHA ORDER BY assignee", "Not able to sort using field 'assignee'."),
    ("project = ALPHA ORDER BY key, id, created, updated, duedate, priority, status, summary", "at most 7"),
    ("project = ALPHA extra", "Expecting either 'OR' or 'AND' but got 'extra'"),
])
def test_errors(site: Site, text: str, message: str) -> None:
    with pytest.raises(jql.JqlError) as info:
        jql.search(site, text)
    assert message in str(info.value)


def test_matches_single_issue(site: Site) -> None:
    issue = site.issue("ALPHA-5")
    assert jql.matches(site, "project = ALPHA AND key = ALPHA-5", issue)
    assert not jql.matches(site, "project = BRAVO", issue)


def test_moved_issue_keeps_old_key_in_jql(site: Site) -> None:
    s = Site("move", "http://jira.test")
    populate(s, issues=50, seed=1)
    issue = s.issue("ALPHA-3")
    s.move_issue(issue, "BRAVO")
    assert issue.key.startswith("BRAVO-")
    assert jql.search(s, "key = ALPHA-3") == [issue.id]
    assert issue.id in jql.search(s, "project = BRAVO")
    assert issue.id not in jql.search(s, "project = ALPHA")


def test_search_speed_on_100k() -> None:
    import time

    s = Site("big", "http://jira.test")
    populate(s, issues=100_000, seed=5)
    started = time.perf_counter()
    result = jql.search(s, "project = ALPHA AND statusCategory != Done ORDER BY key")
    assert result
    assert time.perf_counter() - started < 1.0


def test_assignee_reporter_and_labels() -> None:
    s = Site("people", "http://jira.test")
    s.add_project("ALPHA", "Alpha")
    bob = s.add_user("bob@example.com", "Bob").account_id
    mine = s.create_issue("ALPHA", "mine", fields={"assignee": {"accountId": bob}, "labels": ["Sync", "ops"]})
    other = s.create_issue("ALPHA", "other", user=bob)
    bare = s.create_issue("ALPHA", "bare")
    assert jql.search(s, f"assignee = {bob}") == [mine.id]
    assert jql.search(s, f'reporter = "{bob}"') == [other.id]
    # `!=` and NOT IN never match an empty value, as on Jira.
    assert jql.search(s, f"assignee != {bob}") == []
    assert set(jql.search(s, f"reporter not in ({bob})")) == {mine.id, bare.id}
    assert jql.search(s, "labels = sync") == jql.search(s, "labels in (nope, OPS)") == [mine.id]
    assert jql.search(s, "labels != sync") == [] and jql.search(s, "labels != x") == [mine.id]
    with pytest.raises(jql.JqlError, match="The value 'ghost' does not exist for the field 'assignee'"):
        jql.search(s, "assignee = ghost")


def test_matches_a_just_deleted_issue() -> None:
    # jira:issue_deleted webhook filters run after the site has forgotten the issue.
    s = Site("gone", "http://jira.test")
    populate(s, issues=20, seed=3)
    s.renderer = EVENTS  # events render issues for their listeners
    deleted = []
    s.listeners.append(lambda event: deleted.append(event.subject) if event.kind == "issue_deleted" else None)
    issue = s.issue("ALPHA-2")
    s.delete_issue(issue)
    assert deleted[-1] is issue and s.issue(issue.id) is None
    assert jql.matches(s, f"key = ALPHA-2 AND id = {issue.id} AND project = ALPHA", issue)
    assert jql.matches(s, "issuekey in (ALPHA-2, ALPHA-3)", issue)
    assert not jql.matches(s, "key != ALPHA-2", issue)
    assert not jql.matches(s, "project = BRAVO", issue)
    with pytest.raises(jql.JqlError):
        jql.matches(s, "key = ALPHA-2", s.issue("ALPHA-3"))  # only the subject itself resolves


def test_clauses_walks_the_tree() -> None:
    query = jql.parse("project = A AND NOT (status = Done OR labels in (x)) ORDER BY key")
    assert [c.field for c in jql.clauses(query.where)] == ["project", "status", "labels"]
    assert list(jql.clauses(jql.parse("ORDER BY key").where)) == []
