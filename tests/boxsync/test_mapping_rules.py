"""The field and dependency mapping rules, as pure functions (boxes/mapping.py): which Jira fields
fit which attribute, and how a PUT body is read and refused."""
from __future__ import annotations

import pytest

from boxsync.boxes.mapping import (ATTRIBUTES, FieldMapping, Mappings, candidates, default_fields, dependencies_json,
                                   fits, parse_dependencies, parse_fields)
from boxsync.boxes.model import Invalid

DATEPICKER = "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"
FIELDS = [
    {"id": "summary", "name": "Summary", "custom": False, "schema": {"type": "string", "system": "summary"}},
    {"id": "duedate", "name": "Due date", "custom": False, "schema": {"type": "date", "system": "duedate"}},
    {"id": "created", "name": "Created", "custom": False, "schema": {"type": "datetime", "system": "created"}},
    {"id": "customfield_10200", "name": "Start date", "custom": True,
     "schema": {"type": "date", "custom": DATEPICKER, "customId": 10200}},
    {"id": "customfield_10300", "name": "Target start", "custom": True,
     "schema": {"type": "date", "custom": DATEPICKER, "customId": 10300}},
    {"id": "customfield_10016", "name": "Story Points", "custom": True, "schema": {"type": "number", "customId": 10016}},
    {"id": "customfield_10400", "name": "Task mode", "custom": True, "schema": {"type": "option", "customId": 10400}},
    {"id": "customfield_10401", "name": "Mode note", "custom": True, "schema": {"type": "string", "customId": 10401}},
    {"id": "issuelinks", "name": "Linked Issues", "custom": False, "schema": {"type": "array", "items": "issuelinks"}},
    {"id": "thumbnail", "name": "Images", "custom": False},
]
BY_ID = {f["id"]: f for f in FIELDS}
GENERAL = {"start": "customfield_10200", "end": "duedate", "baselineStart": None, "baselineEnd": None,
           "progress": "statusCategory", "taskMode": None}


def refusal(call) -> Invalid:  # noqa: ANN001
    with pytest.raises(Invalid) as caught:
        call()
    return caught.value


def test_defaults_find_start_date_by_schema_and_name_whatever_its_id():
    assert default_fields(FIELDS) == FieldMapping(start="customfield_10200", end="duedate", progress="statusCategory")
    # A text field named "Start date" is not the date picker; the oldest date picker of that name wins.
    others = [{"id": "customfield_1", "name": "Start date", "schema": {"type": "string"}},
              {"id": "customfield_9", "name": "start date", "schema": {"type": "date", "custom": DATEPICKER, "customId": 9}},
              {"id": "customfield_5", "name": "Start Date ", "schema": {"type": "date", "custom": DATEPICKER, "customId": 5}}]
    assert default_fields(others).start == "customfield_5"
    assert default_fields(FIELDS[:3]).start is None  # no Start date field: not synchronized


def test_which_fields_fit_which_attribute():
    assert fits("start", BY_ID["created"]) and fits("baselineEnd", BY_ID["duedate"])
    assert not fits("start", BY_ID["customfield_10016"]) and not fits("progress", BY_ID["duedate"])
    assert fits("taskMode", BY_ID["customfield_10400"]) and fits("taskMode", BY_ID["customfield_10401"])
    assert not fits("taskMode", BY_ID["summary"])  # a system text field is no place for a task mode
    offered = {c["id"]: c["attributes"] for c in candidates(FIELDS)}
    assert offered == {"duedate": ["start", "end", "baselineStart", "baselineEnd"],
                       "created": ["start", "end", "baselineStart", "baselineEnd"],
                       "customfield_10200": ["start", "end", "baselineStart", "baselineEnd"],
                       "customfield_10300": ["start", "end", "baselineStart", "baselineEnd"],
                       "customfield_10016": ["progress"], "customfield_10400": ["taskMode"],
                       "customfield_10401": ["taskMode"]}
    assert [c["name"] for c in candidates(FIELDS)][:2] == ["Created", "Due date"]  # by name


def test_a_field_mapping_with_project_overrides_is_read():
    override = {**GENERAL, "start": None, "end": "customfield_10300", "progress": "customfield_10016",
                "taskMode": "customfield_10400"}
    general, projects = parse_fields({"general": GENERAL, "projects": {"ALPHA": override}, "fields": [],
                                      "siteProjects": []}, FIELDS, {"ALPHA", "BETA"})
    assert general == FieldMapping(start="customfield_10200", end="duedate", progress="statusCategory")
    assert projects == {"ALPHA": FieldMapping(end="customfield_10300", progress="customfield_10016",
                                              taskMode="customfield_10400")}
    mappings = Mappings(general=general, projects=projects, dependencies=[])
    assert mappings.for_project("ALPHA").start is None and mappings.for_project("BETA") == general
    assert parse_fields({"general": GENERAL}, FIELDS, set())[1] == {}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"general": {**GENERAL, "start": "duedate"}}, "general.end", "already mapped to Start"),
    ({"general": {**GENERAL, "baselineStart": "created", "baselineEnd": "created"}}, "general.baselineEnd", "Created"),
    ({"general": {**GENERAL, "progress": "customfield_10200"}}, "general.progress", "statusCategory"),
    ({"general": {**GENERAL, "start": "issuelinks"}}, "general.start", "array field"),
    ({"general": {**GENERAL, "start": "thumbnail"}}, "general.start", "untyped"),
    ({"general": {**GENERAL, "start": ""}}, "general.start", "field id"),
    ({"general": {**GENERAL, "end": ["duedate"]}}, "general.end", "field id"),
    ({"general": "default"}, "general", "object"),
    ({"general": GENERAL, "projects": {"ZED": GENERAL}}, "projects.ZED", "no project"),
    ({"general": GENERAL, "projects": {"BETA": None}}, "projects.BETA", "object"),
    ({"general": GENERAL, "projects": {"BETA": {**GENERAL, "end": "customfield_10200"}}}, "projects.BETA.end",
     "already mapped"),
    ({"general": GENERAL, "extra": True}, "extra", "not part"),
])
def test_a_bad_field_mapping_names_its_place(body, field, words):
    exc = refusal(lambda: parse_fields(body, FIELDS, {"ALPHA", "BETA"}))
    assert (exc.field, exc.status) == (field, 422) and words in exc.reason, exc


def test_each_attribute_must_be_given():
    for attr in ATTRIBUTES:
        body = {"general": {k: v for k, v in GENERAL.items() if k != attr}}
        assert refusal(lambda: parse_fields(body, FIELDS, set())).field == f"general.{attr}"
    assert refusal(lambda: parse_fields([GENERAL], FIELDS, set())).status == 400


LINK_TYPES = {"10000": "Blocks", "10001": "Cloners", "10003": "Relates"}


def test_a_dependency_mapping_is_read_in_type_order():
    body = [{"type": "soft", "linkTypeId": "10003", "reversed": True}, {"type": "FS", "linkTypeId": 10000}]
    deps = parse_dependencies(body, LINK_TYPES, {})
    assert deps == [("FS", "10000", False), ("soft", "10003", True)]
    mappings = Mappings(general=FieldMapping(), projects={}, dependencies=deps)
    assert mappings.dependency_of("10003") == ("soft", True) and mappings.dependency_of("10001") is None
    assert dependencies_json(mappings)[0] == {"type": "FS", "linkTypeId": "10000", "reversed": False}
    assert parse_dependencies([], LINK_TYPES, {}) == []


@pytest.mark.parametrize(("body", "field", "words"), [
    ([{"type": "FS", "linkTypeId": "10000"}, {"type": "SF", "linkTypeId": "10000"}], "[1].linkTypeId", "only one time"),
    ([{"type": "FS", "linkTypeId": "10000"}, {"type": "FS", "linkTypeId": "10001"}], "[1].type", "twice"),
    ([{"type": "fs", "linkTypeId": "10000"}], "[0].type", "FS, SS, FF, SF, soft"),
    ([{"type": "SS", "linkTypeId": "10003"}], "[0].linkTypeId", "'By relation'"),
    ([{"type": "SS", "linkTypeId": True}], "[0].linkTypeId", "digits"),
    ([{"type": "SS", "linkTypeId": "10002"}], "[0].linkTypeId", "no issue link type"),
    ([{"type": t, "linkTypeId": str(10000 + i)} for i, t in enumerate(("FS", "SS", "FF", "SF", "soft", "FS"))],
     "body", "more than"),
])
def test_a_bad_dependency_mapping_names_its_place(body, field, words):
    exc = refusal(lambda: parse_dependencies(body, LINK_TYPES, {"10003": "By relation"}))
    assert exc.field == field and words in exc.reason, exc
