"""Field and dependency mapping end to end, against jirasim over real HTTP, on SQLite and
PostgreSQL: the site's defaults on first look, a site whose Start date field has another id, what
a sync reads through the mapping, bad input refused without change, admins only, a link type that
is a dependency or a structure builder but never both, and Boxes flagged by a changed mapping."""
from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from boxsync.boxes.tables import boxes, dependency_mappings, field_mappings
from jirasim.model import START_DATE_FIELD
from tests.boxsync.boxkit import ALICE, world

OWN_START = "customfield_10100"
BLOCKS, CLONERS, DUPLICATE, RELATES = "10000", "10001", "10002", "10003"
DEFAULT = {"start": START_DATE_FIELD, "end": "duedate", "baselineStart": None, "baselineEnd": None,
           "progress": "statusCategory", "taskMode": None}


@pytest.fixture
def w(database_url):
    with world(database_url) as made:
        yield made


def fields_of(w, **kwargs) -> dict:
    resp = w.api("GET", "/api/mappings/fields", **kwargs)
    assert resp.status_code == 200, resp.text
    return resp.json()


def mapping_of(w) -> dict:
    body = fields_of(w)
    return {"general": body["general"], "projects": body["projects"]}


def deps_of(w) -> list:
    resp = w.api("GET", "/api/mappings/dependencies")
    assert resp.status_code == 200, resp.text
    return resp.json()


def put_fields(w, body, **kwargs) -> httpx.Response:
    return w.api("PUT", "/api/mappings/fields", json=body, **kwargs)


def put_deps(w, body, **kwargs) -> httpx.Response:
    return w.api("PUT", "/api/mappings/dependencies", json=body, **kwargs)


def issue_nodes(w, box_id: str) -> dict[int, dict]:
    return {int(n["issueId"]): n for n in w.wbs(box_id)["nodes"] if n["kind"] == "issue"}


async def test_the_first_look_stores_the_sites_defaults(w, engine):
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(field_mappings))).scalar() == 0
    body = fields_of(w)
    assert body["general"] == DEFAULT and body["projects"] == {}
    offered = {f["id"]: f for f in body["fields"]}
    assert offered[START_DATE_FIELD]["name"] == "Start date" and offered[START_DATE_FIELD]["type"] == "date"
    assert offered["duedate"]["type"] == "date" and offered["customfield_10016"]["type"] == "number"
    assert "summary" not in offered and "customfield_10020" not in offered  # nothing an attribute can hold
    assert {p["key"] for p in body["siteProjects"]} == {"ALPHA", "BETA"}
    assert offered[START_DATE_FIELD]["attributes"] == ["start", "end", "baselineStart", "baselineEnd"]
    assert offered["customfield_10016"]["attributes"] == ["progress"]
    assert deps_of(w) == [{"type": "FS", "linkTypeId": BLOCKS, "reversed": False}]
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(field_mappings))).mappings().all()
        deps = (await conn.execute(sa.select(dependency_mappings))).mappings().all()
    assert [(r["project_key"], r["start_field"], r["end_field"], r["progress_field"]) for r in stored] == [
        ("", START_DATE_FIELD, "duedate", "statusCategory")]
    assert [(r["type"], r["link_type_id"], r["reversed"]) for r in deps] == [("FS", BLOCKS, False)]
    link_types = {lt["id"]: lt for lt in w.api("GET", "/api/mappings/link-types").json()}
    assert link_types[BLOCKS]["name"] == "Blocks" and link_types[BLOCKS]["builderOf"] is None


def test_a_site_whose_start_date_has_another_id_gets_it_and_syncs_from_it(database_url):
    with world(database_url, site_options={"field_ids": {START_DATE_FIELD: OWN_START}}) as w:
        body = fields_of(w)
        assert body["general"]["start"] == OWN_START and body["general"] == {**DEFAULT, "start": OWN_START}
        assert START_DATE_FIELD not in {f["id"] for f in body["fields"]}
        box = w.create_box()
        assert w.sync(box["id"])["state"] == "done"
        nodes = issue_nodes(w, box["id"])
        assert nodes
        with_start = 0
        for issue_id, node in nodes.items():
            issue = w.jira.issue(issue_id)
            assert node["start"] == issue.start_date and node["end"] == issue.duedate, issue.key
            with_start += issue.start_date is not None
        assert with_start > 0  # the generated site gives most issues a start date
        # An edit in Jira under the site's own id reaches the Box.
        issue = w.jira.issue(next(iter(nodes)))
        edit = httpx.put(f"{w.site}/_jirasim/issues/{issue.key}", json={"fields": {OWN_START: "2027-03-01"}})
        assert edit.status_code == 200, edit.text
        w.sync(box["id"])
        assert issue_nodes(w, box["id"])[issue.id]["start"] == "2027-03-01"


def test_a_sync_reads_dates_through_the_mapping_and_the_projects_own(w):
    box = w.create_box(scope={"projects": ["ALPHA", "BETA"]})
    # BETA's override reads End from the Start date field and does not synchronize Start.
    override = {**DEFAULT, "start": None, "end": START_DATE_FIELD}
    resp = put_fields(w, {"general": DEFAULT, "projects": {"BETA": override}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"general": DEFAULT, "projects": {"BETA": override}}
    assert w.sync(box["id"])["state"] == "done"
    alpha, beta = (w.jira.project_by_key(k).id for k in ("ALPHA", "BETA"))
    for issue_id, node in issue_nodes(w, box["id"]).items():
        issue = w.jira.issue(issue_id)
        if issue.project_id == alpha:
            assert (node["start"], node["end"]) == (issue.start_date, issue.duedate), issue.key
        else:
            assert issue.project_id == beta
            assert (node["start"], node["end"]) == (None, issue.start_date), issue.key


def test_every_bad_field_mapping_is_refused_naming_the_field_and_changes_nothing(w):
    box = w.create_box()
    w.sync(box["id"])
    before = mapping_of(w)

    def general(**changes):  # noqa: ANN202
        return {"general": {**DEFAULT, **changes}}

    cases = [
        (general(start="customfield_99999"), "general.start", "no field"),
        (general(start="summary"), "general.start", "date"),  # a text field
        (general(baselineEnd="customfield_10016"), "general.baselineEnd", "date"),  # Story Points: a number
        (general(progress="duedate"), "general.progress", "number"),
        (general(taskMode="duedate"), "general.taskMode", "select list"),
        (general(taskMode="summary"), "general.taskMode", "select list"),
        (general(end=START_DATE_FIELD), "general.end", "already mapped to Start"),
        (general(baselineStart="duedate"), "general.baselineStart", "already mapped to End"),
        (general(start=17), "general.start", "field id"),
        ({**general(), "colour": "red"}, "colour", "not part"),
        ({"general": {**DEFAULT, "colour": "x"}}, "general.colour", "not a mapped attribute"),
        ({"general": {k: v for k, v in DEFAULT.items() if k != "baselineEnd"}}, "general.baselineEnd", "missing"),
        ({"projects": {}}, "general", "missing"),
        ({**general(), "projects": {"NOPE": DEFAULT}}, "projects.NOPE", "no project"),
        ({**general(), "projects": {"alpha team": DEFAULT}}, "projects.alpha team", "project key"),
        ({**general(), "projects": {"ALPHA": {**DEFAULT, "end": "nosuch"}}}, "projects.ALPHA.end", "no field"),
        ({**general(), "projects": {"BETA": {**DEFAULT, "progress": "summary"}}}, "projects.BETA.progress", "number"),
        ({**general(), "projects": ["ALPHA"]}, "projects", "object"),
    ]
    for body, field, words in cases:
        resp = put_fields(w, body)
        assert resp.status_code == 422, (body, resp.text)
        answer = resp.json()
        assert answer["field"] == field and answer["error"].startswith(field + ":"), answer
        assert words in answer["error"], answer
    for raw, status in ((b"{not json", 400), (b"[]", 400), (b"", 400)):
        resp = w.api("PUT", "/api/mappings/fields", content=raw, headers={"Content-Type": "application/json"})
        assert resp.status_code == status and resp.json()["field"] == "body", resp.text
    assert mapping_of(w) == before
    status = w.sync(box["id"])
    assert status["counts"]["read"] == 0  # no Box was flagged by a refused change


def test_every_bad_dependency_mapping_is_refused_naming_the_field_and_changes_nothing(w):
    before = deps_of(w)
    fs = {"type": "FS", "linkTypeId": BLOCKS, "reversed": False}
    cases = [
        ([{"type": "XX", "linkTypeId": BLOCKS}], "[0].type", "must be one of"),
        ([fs, {"type": "FS", "linkTypeId": RELATES}], "[1].type", "mapped twice"),
        ([fs, {"type": "SS", "linkTypeId": BLOCKS}], "[1].linkTypeId", "only one time"),
        ([{"type": "SS", "linkTypeId": "99999"}], "[0].linkTypeId", "no issue link type"),
        ([{"type": "SS", "linkTypeId": "Blocks"}], "[0].linkTypeId", "digits"),
        ([{"type": "SS"}], "[0].linkTypeId", "digits"),
        ([{"type": "SS", "linkTypeId": RELATES, "reversed": "yes"}], "[0].reversed", "true or false"),
        ([{"type": "SS", "linkTypeId": RELATES, "lag": 2}], "[0].lag", "not part"),
        (["FS"], "[0]", "object"),
    ]
    for body, field, words in cases:
        resp = put_deps(w, body)
        assert resp.status_code == 422, (body, resp.text)
        answer = resp.json()
        assert answer["field"] == field and answer["error"].startswith(field + ":") and words in answer["error"], answer
    resp = put_deps(w, {"FS": BLOCKS})
    assert resp.status_code == 400 and resp.json()["field"] == "body"
    assert deps_of(w) == before


def test_a_dependency_mapping_is_stored_and_used_by_the_next_sync(w):
    box = w.create_box()
    first, second = sorted(w.jira.by_project[w.jira.project_by_key("ALPHA").id])[:2]
    a, b = w.jira.issue(first), w.jira.issue(second)
    link = httpx.post(f"{w.site}/_jirasim/links", json={"type": "Relates", "source": a.key, "destination": b.key})
    assert link.status_code == 201, link.text
    w.sync(box["id"])
    assert not [d for d in w.wbs(box["id"])["dependencies"] if d["linkId"] == str(link.json()["id"])]
    mapped = [{"type": "soft", "linkTypeId": RELATES, "reversed": True},
              {"type": "FS", "linkTypeId": int(BLOCKS)}]  # a number is taken, reversed defaults to false
    resp = put_deps(w, mapped)
    assert resp.status_code == 200, resp.text
    expected = [{"type": "FS", "linkTypeId": BLOCKS, "reversed": False},
                {"type": "soft", "linkTypeId": RELATES, "reversed": True}]
    assert resp.json() == expected and deps_of(w) == expected
    w.sync(box["id"])
    deps = [d for d in w.wbs(box["id"])["dependencies"] if d["linkId"] == str(link.json()["id"])]
    # Reversed: the issue on the inward side ("b relates to a", seen from b) is the predecessor.
    assert deps == [{"fromIssueId": str(b.id), "toIssueId": str(a.id), "type": "soft",
                     "linkId": str(link.json()["id"])}]
    assert put_deps(w, []).status_code == 200 and deps_of(w) == []
    w.sync(box["id"])
    assert w.wbs(box["id"])["dependencies"] == []


def test_only_jira_admins_read_or_change_the_mappings(w):
    before = mapping_of(w)
    deps = deps_of(w)
    for method, path, body in (("GET", "/api/mappings/fields", None), ("GET", "/api/mappings/dependencies", None),
                               ("GET", "/api/mappings/link-types", None),
                               ("PUT", "/api/mappings/fields", {**before, "general": {**DEFAULT, "end": None}}),
                               ("PUT", "/api/mappings/dependencies", [])):
        resp = w.api(method, path, as_=ALICE, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert "administrator" in resp.text
        assert httpx.request(method, w.app + path, json=body).status_code == 401
    assert mapping_of(w) == before and deps_of(w) == deps


def test_a_link_type_is_a_dependency_or_a_structure_builder_never_both(w):
    deps_of(w)  # the defaults: Blocks as FS
    by_relates = w.create_box(name="By relation", builders=["link:" + RELATES])
    resp = put_deps(w, [{"type": "FS", "linkTypeId": BLOCKS}, {"type": "SS", "linkTypeId": RELATES}])
    assert resp.status_code == 422 and resp.json()["field"] == "[1].linkTypeId", resp.text
    assert "By relation" in resp.json()["error"] and "structure builder" in resp.json()["error"]
    assert deps_of(w) == [{"type": "FS", "linkTypeId": BLOCKS, "reversed": False}]
    link_types = {lt["id"]: lt for lt in w.api("GET", "/api/mappings/link-types").json()}
    assert link_types[RELATES]["builderOf"] == "By relation"

    # And the other way round: a Box may not build with a link type mapped as a dependency.
    resp = w.api("POST", "/api/boxes", json={"name": "By blocks", "type": "Project", "builders": ["link:" + BLOCKS]})
    assert resp.status_code == 422 and resp.json()["field"] == "builders", resp.text
    assert "FS dependency" in resp.json()["error"]
    resp = w.api("PATCH", f"/api/boxes/{by_relates['id']}", json={"builders": ["link:" + RELATES, "link:" + BLOCKS]})
    assert resp.status_code == 422 and resp.json()["field"] == "builders", resp.text
    assert w.api("GET", f"/api/boxes/{by_relates['id']}").json()["builders"] == ["link:" + RELATES]
    assert len(w.api("GET", "/api/boxes").json()) == 1

    # Once Blocks is no longer a dependency, a Box may build with it.
    assert put_deps(w, [{"type": "FS", "linkTypeId": DUPLICATE}]).status_code == 200
    resp = w.api("PATCH", f"/api/boxes/{by_relates['id']}", json={"builders": ["link:" + RELATES, "link:" + BLOCKS]})
    assert resp.status_code == 200, resp.text


def test_defaults_leave_out_a_link_type_a_box_already_builds_with(w):
    w.create_box(name="By blocks", builders=["link:" + BLOCKS])  # before anything read the mappings
    assert deps_of(w) == []
    assert fields_of(w)["general"] == DEFAULT


async def test_a_changed_mapping_flags_every_box_for_a_full_re_read(w, engine):
    async def flags() -> list[bool]:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.select(boxes.c.needs_full_sync).order_by(boxes.c.name))).scalars())

    first, second = w.create_box(name="A"), w.create_box(name="B", scope={"projects": ["BETA"]})
    for box in (first, second):
        assert w.sync(box["id"])["state"] == "done"
    assert await flags() == [False, False]
    same = put_fields(w, fields_of(w))  # sending back what GET answered (with its extras) changes nothing
    assert same.status_code == 200 and await flags() == [False, False]
    assert w.sync(first["id"])["counts"]["read"] == 0

    changed = put_fields(w, {"general": {**DEFAULT, "baselineEnd": "duedate", "end": None}})
    assert changed.status_code == 200, changed.text
    assert await flags() == [True, True]
    status = w.sync(first["id"])
    alpha = w.jira.by_project[w.jira.project_by_key("ALPHA").id]
    assert status["counts"]["read"] == len(alpha)  # every issue read again, through the new mapping
    assert await flags() == [False, True]

    assert put_deps(w, deps_of(w)).status_code == 200 and await flags() == [False, True]
    assert put_deps(w, [{"type": "SS", "linkTypeId": BLOCKS}]).status_code == 200
    assert await flags() == [True, True]
