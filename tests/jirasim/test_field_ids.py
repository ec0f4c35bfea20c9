"""A site that numbers its custom fields its own way (as Jira Cloud sites do): the Start date field
is served, read, edited and reported in changelogs under that site's id only."""
from __future__ import annotations

import pytest

from jirasim.model import START_DATE_FIELD, Site
from jirasim.simulator import Simulator
from tests.jirasim.openapi import validate_response
from tests.jirasim.simsite import RunningSite
from tests.support.servers import serve

OWN_ID = "customfield_10100"


async def check(client, method: str, url: str, template: str, status: int, **kwargs):  # noqa: ANN001, ANN201
    response = await client.request(method, url, **kwargs)
    assert response.status_code == status, (method, url, response.status_code, response.text[:500])
    body = response.json() if response.content else None
    validate_response(method, template, status, body)
    return body


@pytest.fixture
def renumbered():
    sim = Simulator(seed=5)
    with serve(lambda url: sim.add_site("r", url, issues=20, field_ids={START_DATE_FIELD: OWN_ID})) as url:
        yield RunningSite(url, sim, sim.sites["r"])


async def test_the_start_date_field_has_the_sites_own_id(renumbered: RunningSite) -> None:
    site = renumbered.site
    issue = next(i for i in site.issues.values() if i.start_date)
    async with renumbered.client() as c:
        fields = await check(c, "GET", "/rest/api/3/field", "/rest/api/3/field", 200)
        by_id = {f["id"]: f for f in fields}
        assert START_DATE_FIELD not in by_id
        assert by_id[OWN_ID]["name"] == "Start date" and by_id[OWN_ID]["schema"]["customId"] == 10100
        assert by_id[OWN_ID]["clauseNames"][0] == "cf[10100]"

        t = "/rest/api/3/issue/{issueIdOrKey}"
        body = await check(c, "GET", f"/rest/api/3/issue/{issue.key}?fields={OWN_ID},{START_DATE_FIELD}", t, 200)
        assert body["fields"] == {OWN_ID: issue.start_date}

        await check(c, "PUT", f"/rest/api/3/issue/{issue.key}", t, 204, json={"fields": {OWN_ID: "2027-01-04"}})
        assert issue.start_date == "2027-01-04"
        refused = await check(c, "PUT", f"/rest/api/3/issue/{issue.key}", t, 400,
                              json={"fields": {START_DATE_FIELD: "2027-01-05", OWN_ID: "soon"}})
        assert set(refused["errors"]) == {START_DATE_FIELD, OWN_ID}
        assert issue.start_date == "2027-01-04"
    items = [item for entry in site.changelogs[issue.id] for item in entry["items"] if item["field"] == "Start date"]
    assert items and items[-1]["fieldId"] == OWN_ID and items[-1]["to"] == "2027-01-04"


def test_renumbering_refuses_a_taken_id_or_a_system_field() -> None:
    bare = Site("x", "http://127.0.0.1:1")
    with pytest.raises(ValueError):
        bare.set_field_id(START_DATE_FIELD, "customfield_10016")  # Story Points has it
    with pytest.raises(ValueError):
        bare.set_field_id("duedate", "customfield_10200")
    bare.set_field_id(START_DATE_FIELD, OWN_ID)
    assert bare.field_id(START_DATE_FIELD) == OWN_ID and bare.usual_field_id(START_DATE_FIELD) == ""
    bare.set_field_id(START_DATE_FIELD, START_DATE_FIELD)  # back to the usual id
    assert bare.field_ids == {} and START_DATE_FIELD in bare.fields and OWN_ID not in bare.fields
