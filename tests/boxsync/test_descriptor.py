"""The served descriptor: valid against Atlassian's schema, scopes that cover (exactly) what we
call, and every URL it declares answered by a route that verifies Jira's token."""
from __future__ import annotations

import copy
import json
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest

from boxsync.jira.operations import OPERATIONS
from tests.boxsync.connectkit import APP_KEY, boxsync_server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('descriptor')}/d.db"
    with boxsync_server(url, "http://127.0.0.1:9/keys") as app:
        resp = httpx.get(app + "/atlassian-connect.json")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
        yield app, resp.json(), resp.content


@pytest.fixture(scope="module")
def schema(shared_dir):
    raw = json.loads((shared_dir / "jira-reference-data/connect-descriptor/jira-global-schema.json").read_text())
    # The published schema predates the signed-install and context-qsh migrations; relax only the
    # apiMigrations node to admit them (as booleans), nothing else.
    relaxed = copy.deepcopy(raw)
    for flag in ("signed-install", "context-qsh"):
        relaxed["properties"]["apiMigrations"]["properties"][flag] = {"type": "boolean"}
    return raw, relaxed


def test_descriptor_validates_against_the_schema(served, schema):
    _, descriptor, _ = served
    raw, relaxed = schema
    jsonschema.Draft4Validator(relaxed).validate(descriptor)
    # Proof the relaxation is exactly that: only the two migration flags fail the original.
    errors = list(jsonschema.Draft4Validator(raw).iter_errors(descriptor))
    assert errors and all(list(e.absolute_path) == ["apiMigrations"] for e in errors)


def test_descriptor_is_rendered_for_this_deployment(served):
    app, descriptor, _ = served
    assert descriptor["baseUrl"] == app and descriptor["key"] == APP_KEY
    assert descriptor["authentication"] == {"type": "jwt"}
    assert descriptor["apiMigrations"] == {"gdpr": True, "context-qsh": True, "signed-install": True}
    assert descriptor["lifecycle"] == {"installed": "/installed", "uninstalled": "/uninstalled",
                                       "enabled": "/enabled", "disabled": "/disabled"}
    modules = descriptor["modules"]
    assert modules["webPanels"][0]["location"] == "atl.jira.view.issue.right.context"
    assert {w["event"] for w in modules["webhooks"]} == {
        "jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "issuelink_created", "issuelink_deleted"}
    assert {f["name"]["value"].split(" (")[0] for f in modules["jiraIssueFields"]} == {
        "Start date", "End date", "Task mode", "Progress"}
    assert modules["adminPages"] and modules["generalPages"]


def test_descriptor_is_served_byte_for_byte_the_same(served):
    app, _, content = served
    assert httpx.get(app + "/atlassian-connect.json").content == content


def test_scopes_cover_every_operation_the_code_calls_and_no_more(served, shared_dir):
    _, descriptor, _ = served
    spec = json.loads((shared_dir / "jira-reference-data/openapi/jira-platform-swagger-v3.v3.json").read_text())
    needed = set()
    for op in OPERATIONS:
        if op.outside_spec:  # the Data Center index summary: its scope is declared with it
            needed.add(op.scope)
            continue
        entry = spec["paths"].get(op.path, {}).get(op.method.lower())
        assert entry is not None, f"{op.method} {op.path} is not in Jira's OpenAPI spec"
        needed.add(entry["x-atlassian-connect-scope"])
    scopes = set(descriptor["scopes"])
    assert needed <= scopes, f"descriptor lacks {needed - scopes}"
    # ACT_AS_USER: write-back acts with the user's own permissions (OAuth 2.0 JWT bearer).
    assert scopes - needed == {"ACT_AS_USER"}, f"scopes requested but not needed: {scopes - needed - {'ACT_AS_USER'}}"


def test_every_declared_url_is_served_and_verified(served):
    app, descriptor, _ = served
    modules = descriptor["modules"]
    page_urls = [m["url"] for key in ("webPanels", "generalPages", "adminPages") for m in modules[key]]
    page_urls.append(modules["configurePage"]["url"])
    for url in page_urls:
        path = urlsplit(url).path
        assert httpx.get(app + path).status_code == 401, path  # exists, and wants a token
    for url in {w["url"] for w in modules["webhooks"]} | set(descriptor["lifecycle"].values()):
        assert httpx.post(app + url, json={}).status_code == 401, url
    # Public links (no token): the descriptor itself and the administrator guide.
    for link in descriptor["links"].values():
        resp = httpx.get(link)
        assert resp.status_code == 200, link
    assert "ACT_AS_USER" in httpx.get(descriptor["links"]["documentation"]).text


def test_the_admin_guide_explains_every_scope_the_descriptor_requests(served):
    app, descriptor, _ = served
    guide = httpx.get(app + "/docs/admin").text
    for scope in descriptor["scopes"]:
        assert f"<td>{scope}</td>" in guide, f"the administrator guide does not explain {scope}"
