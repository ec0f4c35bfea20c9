"""Validate jirasim's responses against Jira Cloud's published OpenAPI (v3) spec.

The spec is read from the shared reference data (never copied into the repo). `validate_response`
finds the operation, picks the JSON schema of the documented status and validates with
`OAS30ReadValidator`, `$ref`s resolved through a `referencing` registry over the whole spec.
Where the spec documents an error status without a body schema, the body must be Jira's
ErrorCollection — the shape Jira really sends.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any

from openapi_schema_validator import OAS30ReadValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.conftest import SHARED  # ../shared beside the repository, never inside it

SPEC_PATH = SHARED / "jira-reference-data" / "openapi" / "jira-platform-swagger-v3.v3.json"
SPEC_URI = "urn:jira-platform-v3"


@functools.lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT4)
    return Registry().with_resource(SPEC_URI, resource)


def operation(method: str, path_template: str) -> dict[str, Any]:
    """The spec's operation; `/rest/api/2/…` and `/rest/api/latest/…` map to the v3 path."""
    template = re.sub(r"^/rest/api/(2|latest)/", "/rest/api/3/", path_template)
    try:
        return spec()["paths"][template][method.lower()]
    except KeyError:
        raise AssertionError(f"{method} {template} is not in Jira's OpenAPI spec") from None


def response_schema(method: str, path_template: str, status: int) -> dict[str, Any] | None:
    op = operation(method, path_template)
    responses = op["responses"]
    entry = responses.get(str(status)) or responses.get("default")
    if entry is None:
        raise AssertionError(f"{method} {path_template}: status {status} is not documented "
                             f"(documented: {sorted(responses)})")
    return entry.get("content", {}).get("application/json", {}).get("schema")


def validate(instance: Any, schema: dict[str, Any]) -> None:
    # "#/components/…" refs must resolve inside the spec document, so the resolver's base URI is
    # the spec's (a plain `registry=` would resolve them against the bare schema).
    # `format` is not asserted: Jira's own timestamps (`…T16:22:24.349+0000`) are not the RFC 3339
    # date-times the spec's `format: date-time` would demand, and jirasim copies Jira, not the spec.
    validator = OAS30ReadValidator(
        schema, registry=_registry(), _resolver=_registry().resolver(base_uri=SPEC_URI),
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise AssertionError(f"{len(errors)} schema error(s); first at {list(first.absolute_path)}: {first.message}")


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """Assert that (status, body) is what the spec documents for the operation."""
    schema = response_schema(method, path_template, status)
    if schema is None:
        if status >= 400:
            schema = {"$ref": "#/components/schemas/ErrorCollection"}
        else:
            assert body in (None, b"", ""), f"{method} {path_template} {status}: expected no body, got {body!r}"
            return
    validate(body, schema)


def connect_scope(method: str, path_template: str) -> str | None:
    return operation(method, path_template).get("x-atlassian-connect-scope")
