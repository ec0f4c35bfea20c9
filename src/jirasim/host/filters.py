"""Webhook JQL filters, evaluated against the issue JSON carried by the event.

Webhook filters must also work for `jira:issue_deleted`, when the issue is gone from the site, so
this evaluates the JSON snapshot in the event rather than querying the site. It supports the subset
Jira documents for dynamic webhook filters (fields `issueKey, project, issuetype, status, assignee,
reporter, cf[id]` with `= != IN NOT IN`) plus `AND`, `OR`, `NOT`, parentheses, `EMPTY`, `labels`,
`parent`, `statusCategory` and `key`/`id`. When the core JQL engine can evaluate a query against a
live issue, `jirasim.host.webhooks` prefers it and uses this only as the fallback.
"""
from __future__ import annotations

import re
from typing import Any, Callable

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|=|\(|\)|,)|(?P<word>[^\s=!(),"']+))"""
)


class FilterError(ValueError):
    pass


def _tokens(jql: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    jql = jql.strip()
    while pos < len(jql):
        m = _TOKEN.match(jql, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot parse JQL near {jql[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append(("value", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            out.append(("op", m.group("op")))
        elif m.group("word") is not None:
            out.append(("word", m.group("word")))
    return out


def _values(issue: dict, name: str) -> list[str]:
    """The comparable values of a JQL field on a rendered issue (ids and names, lower-cased)."""
    fields = issue.get("fields") or {}
    name = name.lower()

    def ref(obj: Any, *keys: str) -> list[str]:
        if not isinstance(obj, dict):
            return []
        return [str(obj[k]) for k in keys if obj.get(k) is not None]

    if name in ("issuekey", "key", "issue", "id"):
        vals = [str(issue.get("key", "")), str(issue.get("id", ""))]
    elif name == "project":
        vals = ref(fields.get("project"), "key", "id", "name")
    elif name in ("issuetype", "type"):
        vals = ref(fields.get("issuetype"), "name", "id")
    elif name == "status":
        vals = ref(fields.get("status"), "name", "id")
    elif name == "statuscategory":
        vals = ref((fields.get("status") or {}).get("statusCategory"), "name", "key", "id")
    elif name in ("assignee", "reporter"):
        vals = ref(fields.get(name), "accountId")
    elif name == "labels":
        vals = [str(v) for v in fields.get("labels") or []]
    elif name == "parent":
        vals = ref(fields.get("parent"), "key", "id")
    else:
        m = re.fullmatch(r"cf\[(\d+)\]|customfield_(\d+)", name)
        if not m:
            raise FilterError(f"Field '{name}' is not supported in webhook filters")
        value = fields.get(f"customfield_{m.group(1) or m.group(2)}")
        items = value if isinstance(value, list) else ([] if value is None else [value])
        vals = []
        for item in items:
            vals.extend(ref(item, "value", "name", "id") if isinstance(item, dict) else [str(item)])
    return [v.lower() for v in vals if v != ""]


def compile_filter(jql: str) -> Callable[[dict], bool]:
    """Parse once; the result evaluates a rendered issue. Empty JQL matches everything."""
    tokens = _tokens(jql or "")
    pos = 0

    def peek(kind: str | None = None, text: str | None = None) -> bool:
        if pos >= len(tokens):
            return False
        k, t = tokens[pos]
        return (kind is None or k == kind) and (text is None or t.upper() == text.upper())

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end of JQL")
        pos += 1
        return tokens[pos - 1]

    def value() -> str | None:
        kind, text = take()
        if kind == "op":
            raise FilterError(f"expected a value, got {text!r}")
        if kind == "word" and text.upper() in ("EMPTY", "NULL"):
            return None
        return text.lower()

    def clause() -> Callable[[dict], bool]:
        if peek("word", "NOT"):
            take()
            inner = clause()
            return lambda issue: not inner(issue)
        if peek("op", "("):
            take()
            inner = disjunction()
            if take() != ("op", ")"):
                raise FilterError("missing )")
            return inner
        kind, field = take()
        if kind != "word":
            raise FilterError(f"expected a field, got {field!r}")
        negate = False
        if peek("word", "NOT"):
            take()
            negate = True
        op_kind, op = take()
        op = op.upper()
        if op == "IN":
            if take() != ("op", "("):
                raise FilterError("IN needs a list")
            options = [value()]
            while peek("op", ","):
                take()
                options.append(value())
            if take() != ("op", ")"):
                raise FilterError("missing ) after IN list")
        elif op in ("=", "!=", "IS"):
            if op == "IS" and peek("word", "NOT"):
                take()
                negate = not negate
            options = [value()]
            if op == "!=":
                negate = not negate
        else:
            raise FilterError(f"operator {op!r} is not supported in webhook filters")
        _values({}, field)  # reject unknown fields at compile time

        def test(issue: dict) -> bool:
            have = _values(issue, field)
            hit = any((o is None and not have) or (o is not None and o in have) for o in options)
            return hit != negate

        return test

    def conjunction() -> Callable[[dict], bool]:
        parts = [clause()]
        while peek("word", "AND"):
            take()
            parts.append(clause())
        return lambda issue: all(p(issue) for p in parts)

    def disjunction() -> Callable[[dict], bool]:
        parts = [conjunction()]
        while peek("word", "OR"):
            take()
            parts.append(conjunction())
        return lambda issue: any(p(issue) for p in parts)

    if not tokens:
        return lambda issue: True
    result = disjunction()
    if pos != len(tokens):
        raise FilterError(f"unexpected {tokens[pos][1]!r}")
    return result
