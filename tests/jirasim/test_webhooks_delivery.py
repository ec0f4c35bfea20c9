"""Webhook delivery: signatures, payloads, retries, the failed list and the delivery faults."""
from __future__ import annotations

import json

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, qsh, running, validate_response, wait_until

HOOKS = {"webhooks": [
    {"event": "jira:issue_created", "url": "/hooks/created?issue=${issue.key}"},
    {"event": "jira:issue_updated", "url": "/hooks/updated"},
    {"event": "jira:issue_deleted", "url": "/hooks/deleted", "excludeBody": True},
    {"event": "issuelink_created", "url": "/hooks/link"},
    {"event": "issuelink_deleted", "url": "/hooks/link"},
]}
FAST = {"retry_delays_ms": [20, 40, 60], "timeout_ms": 2000}


def test_descriptor_webhooks_are_jwt_signed_with_a_matching_qsh_and_carry_jira_payloads():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        issue = env.create_issue("DEMO", "First", user=ADMIN_ACCOUNT_ID)
        env.edit_issue(issue, {"summary": "Renamed"}, user=ADMIN_ACCOUNT_ID)
        other = env.create_issue("DEMO", "Second")
        link = env.add_link("Blocks", issue, other)
        env.remove_link(link.id)
        env.delete_issue(other)
        assert env.flush()["idle"] is True

        created, created_other = env.peer.seen_at("/hooks/created")
        assert created.verdict == created_other.verdict == "ok"  # HS256 with the shared secret, qsh over POST + path + query
        assert created.claims["qsh"] == qsh("POST", f"/hooks/created?issue={issue.key}")
        assert created.query == f"issue={issue.key}"
        body = created.json()
        assert body["webhookEvent"] == "jira:issue_created" and body["issue_event_type_name"] == "issue_created"
        assert isinstance(body["timestamp"], int) and body["issue"]["key"] == issue.key
        assert body["user"]["accountId"] == ADMIN_ACCOUNT_ID and "changelog" not in body
        assert "matchedWebhookIds" not in body
        assert created.headers["x-atlassian-webhook-flow"] == "Primary"
        assert "x-atlassian-webhook-retry" not in created.headers

        [updated] = env.peer.seen_at("/hooks/updated")
        change = updated.json()
        assert change["issue_event_type_name"] == "issue_updated"
        assert change["changelog"]["items"][0]["fieldId"] == "summary"
        assert change["changelog"]["items"][0]["toString"] == "Renamed"

        links = env.peer.seen_at("/hooks/link")
        assert [s.json()["webhookEvent"] for s in links] == ["issuelink_created", "issuelink_deleted"]
        payload = links[0].json()["issueLink"]
        assert payload["id"] == link.id and payload["sourceIssueId"] == issue.id
        assert payload["destinationIssueId"] == other.id and payload["systemLink"] is False
        assert payload["issueLinkType"]["name"] == "Blocks"
        assert all(isinstance(payload[k], int) for k in ("id", "sourceIssueId", "destinationIssueId"))

        [deleted] = env.peer.seen_at("/hooks/deleted")
        assert deleted.body == b"" and deleted.verdict == "ok"  # excludeBody

        identifiers = [s.headers["x-atlassian-webhook-identifier"] for s in env.peer.seen_at("/hooks/")]
        assert len(set(identifiers)) == len(identifiers)


def test_descriptor_filter_and_disabled_apps():
    hooks = {"webhooks": [{"event": "jira:issue_created", "url": "/hooks/bugs",
                           "filter": "project = DEMO AND issuetype = Bug"}]}
    with running(Peer(modules=hooks)) as env:
        env.install()
        env.create_issue("DEMO", "a task")
        env.create_issue("DEMO", "a bug", issuetype="Bug")
        env.flush()
        assert [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/bugs")] == ["a bug"]
        env.client.post(f"{env.site_url}/_jirasim/apps/{env.peer.key}/disable")
        env.create_issue("DEMO", "another bug", issuetype="Bug")
        env.flush()
        assert len(env.peer.seen_at("/hooks/bugs")) == 1


def test_retries_on_5xx_keep_the_identifier_and_count_up():
    peer = Peer(modules=HOOKS)
    peer.statuses["/hooks/created"] = [500, 503, 200]
    with running(peer) as env:
        env.install()
        env.settings(**FAST)
        env.create_issue("DEMO", "retry me")
        assert env.flush()["idle"] is True
        seen = env.peer.seen_at("/hooks/created")
        assert len(seen) == 3
        assert len({s.headers["x-atlassian-webhook-identifier"] for s in seen}) == 1
        assert [s.headers.get("x-atlassian-webhook-retry") for s in seen] == [None, "1", "2"]
        assert all(s.verdict == "ok" for s in seen)  # each attempt is signed afresh
        outcomes = [d["outcome"] for d in env.deliveries(event="jira:issue_created")]
        assert outcomes == ["retrying", "retrying", "delivered"]


def test_no_retry_on_401_and_exhausted_retries_land_in_the_failed_list():
    peer = Peer(modules=HOOKS)
    peer.statuses["/hooks/created"] = [401]
    peer.statuses["/hooks/updated"] = [429, 500, 502, 504]
    with running(peer) as env:
        env.install()
        env.settings(**FAST)
        issue = env.create_issue("DEMO", "no retry")
        env.edit_issue(issue, {"summary": "keeps failing"})
        assert env.flush()["idle"] is True
        assert len(env.peer.seen_at("/hooks/created")) == 1
        updates = env.peer.seen_at("/hooks/updated")
        assert [s.headers.get("x-atlassian-webhook-retry") for s in updates] == [None, "1", "2", "3"]

        failed = env.as_app("GET", "/rest/api/3/webhook/failed")
        assert failed.status_code == 200
        validate_response("GET", "/rest/api/3/webhook/failed", 200, failed.json())
        values = failed.json()["values"]
        ids = {v["id"] for v in values}
        assert updates[0].headers["x-atlassian-webhook-identifier"] in ids
        for value in values:
            assert value["url"].startswith(env.peer.base_url) and isinstance(value["failureTime"], int)
        body = next(v for v in values if v["url"].endswith("/hooks/updated"))["body"]
        assert json.loads(body)["webhookEvent"] == "jira:issue_updated"
        assert failed.json()["next"].startswith(env.site_url + "/rest/api/3/webhook/failed?after=")


def test_connection_errors_are_retried():
    hooks = {"webhooks": [{"event": "jira:issue_created", "url": "/hooks/created"}]}
    peer = Peer(modules=hooks)
    with running(peer) as env:
        env.install()
        env.settings(**FAST)
        # Point the app at a closed port: every attempt fails to connect.
        env.site.apps[peer.key].base_url = "http://127.0.0.1:9"
        env.create_issue("DEMO", "unreachable")
        assert env.flush()["idle"] is True
        attempts = env.deliveries(event="jira:issue_created")
        assert [a["retry"] for a in attempts] == [0, 1, 2, 3]
        assert attempts[-1]["outcome"] == "failed" and attempts[-1]["status"] is None
        assert attempts[0]["error"].startswith("connection")


def test_duplicate_fault_delivers_twice_with_one_identifier():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        assert env.faults(duplicate=1).status_code == 200
        env.create_issue("DEMO", "twice")
        env.create_issue("DEMO", "once")
        env.flush()
        seen = env.peer.seen_at("/hooks/created")
        assert len(seen) == 3
        first, second, third = (s.headers["x-atlassian-webhook-identifier"] for s in seen)
        assert first == second != third
        assert seen[0].body == seen[1].body


def test_drop_fault_never_delivers():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        env.faults(drop=2)
        for n in range(3):
            env.create_issue("DEMO", f"issue {n}")
        env.flush()
        assert [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/created")] == ["issue 2"]
        assert [d["outcome"] for d in env.deliveries(event="jira:issue_created")] == ["dropped", "dropped", "delivered"]
        # Probability 1.0 drops everything until cleared.
        env.faults(drop=1.0)
        env.create_issue("DEMO", "lost")
        env.flush()
        env.client.delete(f"{env.site_url}/_jirasim/webhooks/faults")
        env.create_issue("DEMO", "found")
        env.flush()
        summaries = [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/created")]
        assert summaries == ["issue 2", "found"]


def test_reorder_fault_delivers_a_held_batch_in_reverse():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        env.faults(reorder=3)
        for n in range(3):
            env.create_issue("DEMO", f"issue {n}")
        env.flush()
        summaries = [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/created")]
        assert summaries == ["issue 2", "issue 1", "issue 0"]
        # reorder=true holds until the flush (or a quiet window) and reverses as well
        env.faults(reorder=True)
        env.create_issue("DEMO", "a")
        env.create_issue("DEMO", "b")
        env.flush()
        summaries = [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/created")]
        assert summaries[3:] == ["b", "a"]


def test_delay_fault_holds_delivery():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        env.faults(delay_ms=300)
        env.create_issue("DEMO", "slow")
        wait_until(lambda: env.client.get(f"{env.site_url}/_jirasim/webhooks/deliveries").json()["pending"] == 1, 2)
        assert env.peer.seen_at("/hooks/created") == []
        env.flush()
        assert len(env.peer.seen_at("/hooks/created")) == 1
        bad = env.faults(reorder="sideways")
        assert bad.status_code == 400
