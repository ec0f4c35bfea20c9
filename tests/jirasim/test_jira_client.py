"""The third-party `jira` package (pycontribs), unchanged, against a simulated site.

It is synchronous (requests), so these are plain sync tests talking to the site's own server
thread. Both of its API versions are exercised: v2 (its default) and v3.
"""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from jira import JIRA, JIRAError

from tests.jirasim.simsite import ADMIN, RunningSite, run_site


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSite]:
    yield from run_site(issues=250, seed=21)


@pytest.fixture(params=["2", "3"])
def client(running: RunningSite, request) -> JIRA:
    return JIRA(server=running.base_url, basic_auth=ADMIN, options={"rest_api_version": request.param},
                max_retries=0)


def counters(running: RunningSite) -> dict:
    return httpx.get(running.base_url + "/_jirasim/counters").json()


def test_construction_reads_server_info(running: RunningSite) -> None:
    httpx.delete(running.base_url + "/_jirasim/counters")
    jira = JIRA(server=running.base_url, basic_auth=ADMIN, max_retries=0)
    info = jira.server_info()
    assert info["deploymentType"] == "Cloud" and info["baseUrl"] == running.base_url
    assert jira._is_cloud
    assert counters(running)["routes"] == {"getServerInfo": 2}  # once at construction, once above
    assert jira.myself()["emailAddress"] == "admin@example.com"


def test_enhanced_search_pages_through_everything(client: JIRA, running: RunningSite) -> None:
    expected = {str(i.id) for i in running.site.issues.values() if i.project_id == 10000}
    issues = client.enhanced_search_issues("project = ALPHA ORDER BY key", maxResults=0, fields="summary,status")
    assert {i.id for i in issues} == expected
    first = issues[0]
    assert first.key == "ALPHA-1" and first.fields.summary and first.fields.status.statusCategory.key
    page = client.enhanced_search_issues("project = ALPHA", maxResults=10)
    assert len(page) == 10 and page.nextPageToken
    page2 = client.enhanced_search_issues("project = ALPHA", maxResults=10, nextPageToken=page.nextPageToken)
    assert {i.id for i in page}.isdisjoint({i.id for i in page2})
    assert client.approximate_issue_count("project = ALPHA") == len(expected)
    with pytest.raises(JIRAError) as info:
        client.enhanced_search_issues("project = ", maxResults=5)
    assert info.value.status_code == 400 and "Error in the JQL Query" in info.value.text


def test_fetch_and_edit_issue(client: JIRA, running: RunningSite) -> None:
    issue = client.issue("ALPHA-3")
    assert issue.key == "ALPHA-3" and issue.fields.issuetype.name
    issue.update(fields={"summary": f"Edited through jira v{client._options['rest_api_version']}", "duedate": "2026-05-01"})
    again = client.issue("ALPHA-3", fields="summary,duedate")
    assert again.fields.summary.startswith("Edited through jira") and again.fields.duedate == "2026-05-01"
    assert running.site.issue("ALPHA-3").duedate == "2026-05-01"
    with pytest.raises(JIRAError) as info:
        client.issue("NOPE-1")
    assert info.value.status_code == 404


def test_create_and_delete_issue_link(client: JIRA, running: RunningSite) -> None:
    site = running.site
    before = len(site.links)
    response = client.create_issue_link("Blocks", "ALPHA-7", "ALPHA-8")
    assert response.status_code == 201
    assert len(site.links) == before + 1
    link_id = max(site.links)
    link = client.issue_link(str(link_id))
    assert link.type.name == "Blocks" and link.inwardIssue.key == "ALPHA-7" and link.outwardIssue.key == "ALPHA-8"
    assert {t.name for t in client.issue_link_types()} >= {"Blocks", "Relates", "Duplicate", "Cloners"}
    assert client.delete_issue_link(str(link_id)).status_code == 204
    assert len(site.links) == before


def test_fields_and_projects(client: JIRA) -> None:
    names = {f["name"] for f in client.fields()}
    assert {"Start date", "Story Points", "Sprint", "Summary"} <= names
    assert [p.key for p in client.projects()] == ["ALPHA", "BRAVO"]


def test_create_and_delete_issue(client: JIRA, running: RunningSite) -> None:
    issue = client.create_issue(project="BRAVO", summary="Created by the jira package", issuetype={"name": "Task"})
    assert issue.key.startswith("BRAVO-") and issue.fields.summary == "Created by the jira package"
    issue.delete()
    assert running.site.issue(issue.key) is None
