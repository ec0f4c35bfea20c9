"""Dynamic (REST) webhooks of Connect apps, and admin webhooks with HMAC signatures."""
from __future__ import annotations

import json

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, running, validate_response

DAY_MS = 24 * 3600 * 1000


def register(env, *webhooks, url=None):
    return env.as_app("POST", "/rest/api/3/webhook",
                      json={"url": url or env.peer.base_url + "/hooks/dynamic", "webhooks": list(webhooks)})


def test_register_list_refresh_delete_and_openapi_shapes():
    with running() as env:
        env.install()
        created = register(env, {"events": ["jira:issue_created", "jira:issue_updated"], "jqlFilter": "project = DEMO"},
                           {"events": ["issuelink_created"], "jqlFilter": "project = DEMO"},
                           {"events": ["jira:issue_deleted"], "jqlFilter": "summary ~ x"},
                           {"events": ["jira:issue_updated"], "jqlFilter": "project = DEMO",
                            "fieldIdsFilter": ["duedate"]})
        assert created.status_code == 200, created.text
        validate_response("POST", "/rest/api/3/webhook", 200, created.json())
        results = created.json()["webhookRegistrationResult"]
        assert "createdWebhookId" in results[0] and "createdWebhookId" in results[3]
        assert results[1]["errors"] and "issuelink_created" in results[1]["errors"][0]  # no issuelink_*
        assert results[2]["errors"]  # unsupported JQL field

        listed = env.as_app("GET", "/rest/api/3/webhook", params={"maxResults": 1})
        assert listed.status_code == 200
        validate_response("GET", "/rest/api/3/webhook", 200, listed.json())
        page = listed.json()
        assert page["total"] == 2 and page["isLast"] is False and len(page["values"]) == 1
        hook = page["values"][0]
        now = env.client.get(f"{env.site_url}/_jirasim/webhooks/clock").json()["now"]
        assert abs(hook["expirationDate"] - (now + 30 * DAY_MS)) < 60_000
        assert hook["url"] == env.peer.base_url + "/hooks/dynamic" and hook["jqlFilter"] == "project = DEMO"
        second = env.as_app("GET", "/rest/api/3/webhook", params={"startAt": 1}).json()
        assert second["isLast"] is True and second["values"][0]["fieldIdsFilter"] == ["duedate"]

        env.client.post(f"{env.site_url}/_jirasim/webhooks/clock", json={"advance_ms": 10 * DAY_MS})
        refreshed = env.as_app("PUT", "/rest/api/3/webhook/refresh", json={"webhookIds": [hook["id"]]})
        assert refreshed.status_code == 200
        validate_response("PUT", "/rest/api/3/webhook/refresh", 200, refreshed.json())
        assert refreshed.json()["expirationDate"] >= now + 40 * DAY_MS - 60_000

        deleted = env.as_app("DELETE", "/rest/api/3/webhook", json={"webhookIds": [hook["id"]]})
        assert deleted.status_code == 202
        assert env.as_app("GET", "/rest/api/3/webhook").json()["total"] == 1

        failed = env.as_app("GET", "/rest/api/3/webhook/failed")
        validate_response("GET", "/rest/api/3/webhook/failed", 200, failed.json())


def test_only_connect_apps_and_only_their_base_url():
    with running() as env:
        env.install()
        as_user = env.client.get(f"{env.site_url}/rest/api/3/webhook", auth=env.admin_auth())
        assert as_user.status_code == 403
        validate_response("GET", "/rest/api/3/webhook", 403, as_user.json())
        assert env.client.get(f"{env.site_url}/rest/api/3/webhook").status_code == 401
        elsewhere = register(env, {"events": ["jira:issue_created"], "jqlFilter": "project = DEMO"},
                             url="https://attacker.example.com/hook")
        assert elsewhere.status_code == 400 and elsewhere.json()["errorMessages"]
        validate_response("POST", "/rest/api/3/webhook", 400, elsewhere.json())
        bad_ids = env.as_app("PUT", "/rest/api/3/webhook/refresh", json={"webhookIds": ["x"]})
        assert bad_ids.status_code == 400
        validate_response("PUT", "/rest/api/3/webhook/refresh", 400, bad_ids.json())
        register(env, {"events": ["jira:issue_created"], "jqlFilter": "project = DEMO"})
        second_url = register(env, {"events": ["jira:issue_created"], "jqlFilter": "project = DEMO"},
                              url=env.peer.base_url + "/hooks/other")
        assert second_url.status_code == 400


def test_dynamic_delivery_jql_field_filter_matched_ids_and_expiry():
    with running() as env:
        env.install()
        env.site.add_project("OPS", "Operations", id=20000)  # explicit id: see report (id clash)
        ids = [r["createdWebhookId"] for r in register(
            env,
            {"events": ["jira:issue_created", "jira:issue_updated"], "jqlFilter": "project = DEMO"},
            {"events": ["jira:issue_created"], "jqlFilter": "project in (DEMO, OPS) AND issuetype = Task"},
            {"events": ["jira:issue_updated"], "jqlFilter": "project = DEMO", "fieldIdsFilter": ["duedate"]},
        ).json()["webhookRegistrationResult"]]
        issue = env.create_issue("DEMO", "dyn", user=ADMIN_ACCOUNT_ID)
        env.create_issue("OPS", "ops task")
        env.edit_issue(issue, {"summary": "renamed"})
        env.edit_issue(issue, {"duedate": "2030-01-01"})
        env.flush()
        seen = env.peer.seen_at("/hooks/dynamic")
        assert all(s.verdict == "ok" for s in seen)  # JWT-signed like Connect webhooks
        bodies = [s.json() for s in seen]
        assert [(b["webhookEvent"], b["matchedWebhookIds"]) for b in bodies] == [
            ("jira:issue_created", [ids[0], ids[1]]),
            ("jira:issue_created", [ids[1]]),
            ("jira:issue_updated", [ids[0]]),
            ("jira:issue_updated", [ids[0], ids[2]]),
        ]
        # After 31 days without a refresh the registrations stop delivering.
        env.client.post(f"{env.site_url}/_jirasim/webhooks/clock", json={"advance_ms": 31 * DAY_MS})
        env.create_issue("DEMO", "too late")
        env.flush()
        assert len(env.peer.seen_at("/hooks/dynamic")) == 4


def test_admin_webhooks_with_hmac_signature():
    peer = Peer(hmac_secret="s3cret-value")
    with running(peer) as env:
        base = f"{env.site_url}/rest/webhooks/1.0/webhook"
        created = env.client.post(base, auth=env.admin_auth(), json={
            "name": "sync", "url": env.peer.base_url + "/hooks/admin?key=${issue.key}",
            "events": ["jira:issue_created", "jira:issue_updated", "issuelink_created"],
            "filters": {"issue-related-events-section": "project = DEMO"}, "excludeBody": False,
            "secret": "s3cret-value"})
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["self"].startswith(base + "/") and hook["enabled"] is True
        assert hook["filters"] == {"issue-related-events-section": "project = DEMO"}
        assert "secret" not in hook
        assert env.client.get(hook["self"], auth=env.admin_auth()).json()["name"] == "sync"
        assert [h["name"] for h in env.client.get(base, auth=env.admin_auth()).json()] == ["sync"]

        bob = env.site.add_user("bob@example.com", "Bob", api_token="bob-token")
        assert env.client.post(base, auth=("bob@example.com", "bob-token"), json={
            "name": "x", "url": "http://x.example", "events": []}).status_code == 403

        a = env.create_issue("DEMO", "admin hook")
        b = env.create_issue("DEMO", "other")
        env.add_link("Blocks", a, b)
        env.flush()
        seen = env.peer.seen_at("/hooks/admin")
        assert len(seen) == 3 and all(s.verdict == "ok" for s in seen)  # X-Hub-Signature verified
        assert seen[0].headers["x-hub-signature"].startswith("sha256=")
        assert seen[0].query == f"key={a.key}"
        assert "authorization" not in seen[0].headers
        assert seen[2].json()["webhookEvent"] == "issuelink_created"
        assert "matchedWebhookIds" not in seen[0].json()

        assert env.client.delete(hook["self"], auth=env.admin_auth()).status_code == 204
        env.create_issue("DEMO", "after delete")
        env.flush()
        assert len(env.peer.seen_at("/hooks/admin")) == 3
        assert bob.account_id  # used above


def test_admin_webhook_without_secret_is_unsigned_and_exclude_body():
    with running() as env:
        base = f"{env.site_url}/rest/webhooks/1.0/webhook"
        env.client.post(base, auth=env.admin_auth(), json={
            "name": "bare", "url": env.peer.base_url + "/hooks/bare", "events": ["jira:issue_created"],
            "excludeBody": True})
        env.create_issue("DEMO", "no body")
        env.flush()
        [seen] = env.peer.seen_at("/hooks/bare")
        assert seen.body == b"" and "x-hub-signature" not in seen.headers
        assert json.dumps(seen.headers).count("x-atlassian-webhook-identifier") == 1


def test_jql_filters_apply_to_deleted_issues_and_are_checked_at_registration():
    with running() as env:
        env.install()
        results = register(
            env,
            {"events": ["jira:issue_deleted"], "jqlFilter": "project = DEMO AND issuetype = Bug"},
            {"events": ["jira:issue_deleted"], "jqlFilter": "created >= -1d"},  # not in the dynamic subset
            {"events": ["jira:issue_deleted"], "jqlFilter": "project = DEMO ORDER BY key"},
            {"events": ["jira:issue_deleted"], "jqlFilter": "project = = DEMO"},
        ).json()["webhookRegistrationResult"]
        assert "createdWebhookId" in results[0]
        assert all(r.get("errors") for r in results[1:])

        base = f"{env.site_url}/rest/webhooks/1.0/webhook"
        invalid = env.client.post(base, auth=env.admin_auth(), json={
            "name": "bad", "url": env.peer.base_url + "/hooks/admin", "events": ["jira:issue_deleted"],
            "filters": {"issue-related-events-section": "project in ("}})
        assert invalid.status_code == 400 and invalid.json()["errors"]["filters"].startswith("Invalid JQL: ")
        admin = env.client.post(base, auth=env.admin_auth(), json={
            "name": "recent", "url": env.peer.base_url + "/hooks/admin", "events": ["jira:issue_deleted"],
            "filters": {"issue-related-events-section": "created >= -1d AND issuetype = Task"}})
        assert admin.status_code == 201, admin.text

        bug = env.create_issue("DEMO", "a bug", issuetype="Bug")
        task = env.create_issue("DEMO", "a task")
        env.delete_issue(task)
        env.delete_issue(bug)
        env.flush()
        assert [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/dynamic")] == ["a bug"]
        assert [s.json()["issue"]["key"] for s in env.peer.seen_at("/hooks/admin")] == [task.key]
