"""Every Jira operation the client can call exists in Jira's OpenAPI spec, with a Connect scope.

The spec is reference data beside the repository (conftest `shared_dir`); it is read here, never at
runtime. `declared_scopes` is what the descriptor test checks the app's scopes against.
"""
from __future__ import annotations

import json

import pytest

from boxsync.jira.operations import OPERATIONS

SPEC = "jira-reference-data/openapi/jira-platform-swagger-v3.v3.json"


@pytest.fixture(scope="module")
def spec(shared_dir):
    return json.loads((shared_dir / SPEC).read_text())


def spec_operation(spec: dict, method: str, path: str) -> dict:
    item = spec["paths"].get(path)
    assert item is not None, f"{path} is not a path in Jira's OpenAPI spec"
    op = item.get(method.lower())
    assert op is not None, f"{method} {path} is not an operation in Jira's OpenAPI spec"
    return op


def declared_scopes(spec: dict) -> set[str]:
    return {spec_operation(spec, op.method, op.path)["x-atlassian-connect-scope"] for op in IN_SPEC}


IN_SPEC = [op for op in OPERATIONS if not op.outside_spec]


def test_only_the_index_summary_is_outside_the_cloud_spec(spec):
    outside = [op for op in OPERATIONS if op.outside_spec]
    assert [(op.method, op.path) for op in outside] == [("GET", "/rest/api/2/index/summary")]
    assert all(op.path not in spec["paths"] for op in outside)
    assert [op.scope for op in outside] == ["ADMIN"]


@pytest.mark.parametrize("op", IN_SPEC, ids=lambda op: f"{op.method} {op.path}")
def test_declared_operation_is_in_the_spec(spec, op):
    found = spec_operation(spec, op.method, op.path)
    assert found.get("operationId") == op.name
    assert not found.get("deprecated"), f"{op.name} is deprecated in Jira's spec"
    assert found.get("x-atlassian-connect-scope"), f"{op.name} has no Connect scope in the spec"


def test_scopes_the_descriptor_needs(spec):
    # bulkfetch is tagged WRITE in the spec although it only reads; the rest is READ or DELETE.
    assert declared_scopes(spec) == {"READ", "WRITE", "DELETE"}
