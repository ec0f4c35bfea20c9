"""Lifecycle callbacks as Jira sends them: asynchronous (all but `installed`), signed when they
happen, late or out of order on demand; and cascaded webhooks on the Secondary flow, later."""
from __future__ import annotations

from tests.jirasim.hostkit import Peer, running

HOOKS = {"webhooks": [
    {"event": "jira:issue_deleted", "url": "/hooks/deleted"},
    {"event": "issuelink_deleted", "url": "/hooks/link"},
]}


def events(env) -> list[str]:
    return [s.path for s in env.peer.seen if s.path in ("/installed", "/enabled", "/disabled", "/uninstalled")]


def test_callbacks_are_queued_and_arrive_in_order_without_faults():
    with running() as env:
        assert env.install().status_code == 200
        for action in ("disable", "enable", "uninstall"):
            assert env.app_action(action).status_code == 200
        flushed = env.lifecycle_flush()
        assert flushed["idle"] is True and flushed["held"] == 0
        assert events(env) == ["/installed", "/enabled", "/disabled", "/enabled", "/disabled", "/uninstalled"]
        assert all(s.verdict == "ok" for s in env.peer.seen)
        delivered = env.lifecycle_deliveries()
        assert [d["event"] for d in delivered] == ["enabled", "disabled", "enabled", "disabled", "uninstalled"]
        assert {d["kind"] for d in delivered} == {"lifecycle"} and {d["status"] for d in delivered} == {204}
        # Lifecycle callbacks are not webhooks: none of the webhook headers.
        [uninstalled] = env.peer.seen_at("/uninstalled")
        assert not any(h.startswith("x-atlassian-webhook") for h in uninstalled.headers)


def test_held_callbacks_keep_the_iat_of_when_they_happened_and_can_be_released_reversed():
    with running() as env:
        env.install()
        env.lifecycle_flush()
        assert env.lifecycle_faults(hold=["enabled", "disabled"]).status_code == 200
        assert env.lifecycle_clock(-10_000)["offset_ms"] == -10_000  # the disable happens 10 s "ago"
        env.app_action("disable")
        env.lifecycle_clock(0)
        env.app_action("enable")
        flushed = env.lifecycle_flush()
        assert flushed["idle"] is True and flushed["held"] == 2 and env.peer.seen_at("/disabled") == []
        assert [d["outcome"] for d in env.lifecycle_deliveries()][-2:] == ["held", "held"]
        assert env.lifecycle_release("reverse").json() == {"released": 2}
        env.lifecycle_flush()
        assert events(env)[-2:] == ["/enabled", "/disabled"]  # newest first: out of order
        [disabled], enabled = env.peer.seen_at("/disabled"), env.peer.seen_at("/enabled")[-1]
        assert enabled.claims["iat"] - disabled.claims["iat"] >= 9  # signed when issued, not when sent
        assert disabled.verdict == enabled.verdict == "ok"


def test_only_the_chosen_events_are_held():
    with running() as env:
        env.install()
        env.lifecycle_faults(hold=["uninstalled"])
        env.app_action("uninstall")
        assert env.lifecycle_flush()["held"] == 1
        assert events(env) == ["/installed", "/enabled", "/disabled"]  # disabled went, uninstalled waits
        # The app is gone on the site already; the late callback still arrives when released.
        assert env.client.get(f"{env.site_url}/_jirasim/apps").json()["apps"] == []
        env.client.delete(f"{env.site_url}/_jirasim/lifecycle/faults")  # clearing faults releases too
        env.lifecycle_flush()
        assert events(env)[-1] == "/uninstalled"


def test_a_lost_callback_and_no_retries():
    peer = Peer()
    peer.statuses["/disabled"] = [503]
    with running(peer) as env:
        env.install()
        env.lifecycle_faults(drop=1)
        env.app_action("disable")  # lost
        env.lifecycle_flush()
        env.app_action("enable")  # delivered
        env.app_action("disable")  # answered 503: not retried
        env.lifecycle_flush()
        outcomes = [(d["event"], d["outcome"]) for d in env.lifecycle_deliveries()]
        assert outcomes == [("enabled", "delivered"),  # the install's
                            ("disabled", "dropped"), ("enabled", "delivered"), ("disabled", "failed")]
        assert len(env.peer.seen_at("/disabled")) == 1


def test_lifecycle_control_refuses_bad_input():
    with running() as env:
        assert env.lifecycle_faults(hold="sometimes").status_code == 400
        assert env.lifecycle_release("sideways").status_code == 400
        bad = env.client.post(f"{env.site_url}/_jirasim/lifecycle/clock", json={"offset_ms": "soon"})
        assert bad.status_code == 400 and "offset_ms" in bad.json()["error"]
        assert env.client.get(f"{env.site_url}/_jirasim/lifecycle/clock").json()["offset_ms"] == 0


def test_issue_delete_cascades_go_on_the_secondary_flow_after_the_delete():
    with running(Peer(modules=HOOKS)) as env:
        env.install()
        # No delay at all: the order comes from the lanes, not from timing.
        assert env.settings(secondary_delay_ms=0)["secondary_delay_ms"] == 0
        doomed, a, b = (env.create_issue("DEMO", name) for name in ("doomed", "a", "b"))
        env.add_link("Blocks", doomed, a)
        env.add_link("Relates", b, doomed)
        env.delete_issue(doomed)  # the model removes the links (issuelink_deleted) before the issue goes
        assert env.flush()["idle"] is True
        seen = [s for s in env.peer.seen if s.path.startswith("/hooks/")]
        assert [s.path for s in seen] == ["/hooks/deleted", "/hooks/link", "/hooks/link"]
        assert [s.headers["x-atlassian-webhook-flow"] for s in seen] == ["Primary", "Secondary", "Secondary"]
        assert {d["flow"] for d in env.deliveries(event="issuelink_deleted")} == {"Secondary"}
        # A link removed by someone is a change of its own: Primary.
        link = env.add_link("Blocks", a, b)
        env.remove_link(link.id)
        env.flush()
        assert env.peer.seen_at("/hooks/link")[-1].headers["x-atlassian-webhook-flow"] == "Primary"


def test_webhooks_can_be_held_and_released_too():
    with running(Peer(modules={"webhooks": [{"event": "jira:issue_created", "url": "/hooks/created"}]})) as env:
        env.install()
        env.faults(hold=True)
        env.create_issue("DEMO", "one")
        env.create_issue("DEMO", "two")
        assert env.flush()["held"] == 2 and env.peer.seen_at("/hooks/created") == []
        assert env.client.post(f"{env.site_url}/_jirasim/webhooks/release", json={"order": "reverse"}).json() == {
            "released": 2}
        env.flush()
        assert [s.json()["issue"]["fields"]["summary"] for s in env.peer.seen_at("/hooks/created")] == ["two", "one"]
        assert env.settings(secondary_delay_ms=-1) == {"error": "secondary_delay_ms: a non-negative number"}
