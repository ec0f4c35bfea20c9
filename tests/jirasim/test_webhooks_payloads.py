"""Webhook bodies compared with payloads captured from Jira Cloud (shared reference fixtures).

The fixtures went through a logger (extra keys `level`, `message`, `label`; `timestamp` a string) —
see the fixture README; those keys are ignored and the Cloud-shaped files are used for Cloud shapes.
"""
from __future__ import annotations

import json

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, running

LOGGER_KEYS = {"level", "message", "label"}
HOOKS = {"webhooks": [{"event": "jira:issue_updated", "url": "/hooks/updated"},
                      {"event": "issuelink_created", "url": "/hooks/link"}]}


def fixture(shared_dir, name: str) -> dict:
    path = shared_dir / "jira-reference-data/webhooks/mobitel-jira-to-matrix" / name
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in LOGGER_KEYS}


def test_issue_updated_and_issuelink_bodies_have_jira_clouds_shape(shared_dir):
    status_changed = fixture(shared_dir, "issue/updated/status-changed.json")
    assigned = fixture(shared_dir, "issue/updated/issue-assigned.json")
    link_created = fixture(shared_dir, "issuelink/created.json")
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        bob = env.site.add_user("bob@example.com", "Bob")
        a = env.create_issue("DEMO", "shape")
        b = env.create_issue("DEMO", "other")
        env.edit_issue(a, {"status": {"name": "In Progress"}}, user=ADMIN_ACCOUNT_ID)
        env.edit_issue(a, {"assignee": {"accountId": bob.account_id}}, user=ADMIN_ACCOUNT_ID)
        env.add_link("Blocks", a, b)
        env.flush()
        transition, assignment = (s.json() for s in env.peer.seen_at("/hooks/updated"))
        [link] = (s.json() for s in env.peer.seen_at("/hooks/link"))

    for ours, theirs, kind in ((transition, status_changed, "issue_generic"), (assignment, assigned, "issue_assigned")):
        assert set(ours) == set(theirs)
        assert ours["issue_event_type_name"] == theirs["issue_event_type_name"] == kind
        assert isinstance(ours["timestamp"], int)
        assert set(ours["changelog"]) == set(theirs["changelog"]) == {"id", "items"}
        assert set(status_changed["changelog"]["items"][0]) <= set(ours["changelog"]["items"][0])
        assert set(ours["issue"]) >= {"id", "key", "self", "fields"}
        assert set(status_changed["user"]) <= set(ours["user"])
    item = transition["changelog"]["items"][0]
    assert (item["field"], item["fieldId"], item["fromString"], item["toString"]) == ("status", "status", "To Do", "In Progress")

    assert set(link) == set(link_created) == {"timestamp", "webhookEvent", "issueLink"}
    assert set(link["issueLink"]) == set(link_created["issueLink"])
    assert set(link["issueLink"]["issueLinkType"]) == set(link_created["issueLink"]["issueLinkType"])
    for key in ("id", "sourceIssueId", "destinationIssueId"):
        assert type(link["issueLink"][key]) is type(link_created["issueLink"][key]) is int
