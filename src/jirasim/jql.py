"""The JQL subset that scope rules, search and webhook filters use: parse to a small tree, evaluate
against a `Site`.

Supported clauses (field names case-insensitive):
    project, key/issuekey/issue, id, issuetype/type, status, statusCategory, parent,
    assignee, reporter (account ids), labels  with  = != IN NOT IN
    updated/updatedDate, created/createdDate  with  = != > >= < <=   ("yyyy-mm-dd[ HH:mm]", -7d, epoch ms)
    AND / OR / NOT (also && || !), parentheses, quoted values,
    ORDER BY key|id|created|updated|duedate|priority|status|issuetype|project|summary [ASC|DESC], … (≤7)

Anything else raises `JqlError` whose message reads like Jira's, so the REST layer can answer 400
`{"errorMessages": [message], "errors": {}}`. Evaluation first narrows candidates with the
project/key/id/parent indexes, then filters with compiled predicates.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from jirasim.model import Issue, Site

PREFIX = "Error in the JQL Query: "
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
MAX_ORDER_BY = 7

KEYWORDS = {"AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC", "EMPTY", "NULL", "IS"}
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "!~", "~")
LIST_FIELDS = {"project", "key", "id", "issuetype", "status", "statuscategory", "parent", "assignee", "reporter",
               "labels"}
# Fields an issue may leave empty: like Jira, `!=` and `NOT IN` never match an empty value.
OPTIONAL_FIELDS = {"parent", "assignee", "reporter", "labels"}
DATE_FIELDS = {"updated", "created"}
ALIASES = {
    "project": "project", "key": "key", "issuekey": "key", "issue": "key", "id": "key",
    "issuetype": "issuetype", "type": "issuetype", "status": "status", "statuscategory": "statuscategory",
    "parent": "parent", "assignee": "assignee", "reporter": "reporter", "labels": "labels",
    "updated": "updated", "updateddate": "updated", "created": "created", "createddate": "created",
}
ORDER_FIELDS = {"key": "key", "issuekey": "key", "id": "id", "created": "created", "createddate": "created",
                "updated": "updated", "updateddate": "updated", "duedate": "duedate", "due": "duedate",
                "priority": "priority", "status": "status", "issuetype": "issuetype", "type": "issuetype",
                "project": "project", "summary": "summary", "rank": "id"}
# Real Jira fields we do not evaluate: a clear message instead of "does not exist".
KNOWN_UNSUPPORTED = {"summary", "text", "sprint", "fixversion", "component",
                     "resolution", "priority", "duedate", "due", "description", "comment", "creator", "watcher",
                     "epic link", "filter", "cf", "issuelinktype", "statuscategorychangeddate", "resolved"}


class JqlError(ValueError):
    """A query Jira would reject; `str(exc)` is the message Jira would show."""


# --- tokens ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class Tok:
    kind: str  # "word" | "string" | "op" | "lparen" | "rparen" | "comma" | "end"
    text: str
    pos: int  # 1-based character, as Jira reports
    quoted: bool = False


_WORD = re.compile(r"[^\s=!<>~(),\"']+")


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            j, buf = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise JqlError(f"{PREFIX}Expecting either a value, list or function but got unterminated string "
                               f"(line 1, character {i + 1})")
            toks.append(Tok("string", "".join(buf), i + 1, True))
            i = j + 1
        elif c == "(":
            toks.append(Tok("lparen", c, i + 1)); i += 1
        elif c == ")":
            toks.append(Tok("rparen", c, i + 1)); i += 1
        elif c == ",":
            toks.append(Tok("comma", c, i + 1)); i += 1
        elif text.startswith("&&", i) or text.startswith("||", i):
            toks.append(Tok("word", "AND" if c == "&" else "OR", i + 1)); i += 2
        elif c == "!" and not text.startswith("!=", i) and not text.startswith("!~", i):
            toks.append(Tok("word", "NOT", i + 1)); i += 1
        else:
            for op in OPERATORS:
                if text.startswith(op, i):
                    toks.append(Tok("op", op, i + 1)); i += len(op)
                    break
            else:
                m = _WORD.match(text, i)
                if not m:
                    raise JqlError(f"{PREFIX}The character '{c}' is a reserved JQL character. You must enclose it in "
                                   f"a string or use the escape '\\u{ord(c):04x}' instead. (line 1, character {i + 1})")
                toks.append(Tok("word", m.group(), i + 1)); i = m.end()
    toks.append(Tok("end", "", n + 1))
    return toks


# --- tree -----------------------------------------------------------------------------------------

@dataclass(slots=True)
class Clause:
    field: str  # canonical: project key issuetype status statuscategory parent assignee reporter labels updated created
    op: str  # = != in not in > >= < <=
    values: list[str]
    raw_field: str


@dataclass(slots=True)
class And:
    parts: list


@dataclass(slots=True)
class Or:
    parts: list


@dataclass(slots=True)
class Not:
    part: object


@dataclass(slots=True)
class Query:
    where: object | None  # None = unbounded
    order_by: list[tuple[str, bool]]  # (canonical field, descending)
    text: str


def clauses(node: object | None) -> Iterator[Clause]:
    """The clauses of a parsed `where` tree, depth first (for callers that allow only some fields)."""
    if isinstance(node, (And, Or)):
        for part in node.parts:
            yield from clauses(part)
    elif isinstance(node, Not):
        yield from clauses(node.part)
    elif isinstance(node, Clause):
        yield node


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_kw(self, word: str, offset: int = 0) -> bool:
        t = self.toks[min(self.i + offset, len(self.toks) - 1)]
        return t.kind == "word" and t.text.upper() == word

    def parse(self) -> tuple[object | None, list[tuple[str, bool]]]:
        where = None
        if not (self.peek().kind == "end" or self.is_kw("ORDER")):
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.is_kw("ORDER"):
            self.next()
            if not self.is_kw("BY"):
                t = self.peek()
                raise JqlError(f"{PREFIX}Expecting 'BY' but got '{t.text}'. (line 1, character {t.pos})")
            self.next()
            order = self.order_list()
        t = self.peek()
        if t.kind != "end":
            raise JqlError(f"{PREFIX}Expecting either 'OR' or 'AND' but got '{t.text}'. (line 1, character {t.pos})")
        return where, order

    def order_list(self) -> list[tuple[str, bool]]:
        out = []
        while True:
            t = self.next()
            if t.kind not in ("word", "string") or (not t.quoted and t.text.upper() in KEYWORDS):
                raise JqlError(f"{PREFIX}Expecting a field name but got '{t.text or '<EOF>'}'. (line 1, character {t.pos})")
            name = ORDER_FIELDS.get(t.text.lower())
            if name is None:
                raise JqlError(f"Not able to sort using field '{t.text}'.")
            desc = False
            if self.is_kw("ASC") or self.is_kw("DESC"):
                desc = self.next().text.upper() == "DESC"
            out.append((name, desc))
            if self.peek().kind != "comma":
                break
            self.next()
        if len(out) > MAX_ORDER_BY:
            raise JqlError(f"{PREFIX}The ORDER BY clause may contain at most {MAX_ORDER_BY} fields.")
        return out

    def or_expr(self) -> object:
        parts = [self.and_expr()]
        while self.is_kw("OR"):
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(parts)

    def and_expr(self) -> object:
        parts = [self.not_expr()]
        while self.is_kw("AND"):
            self.next()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else And(parts)

    def not_expr(self) -> object:
        if self.is_kw("NOT"):
            self.next()
            return Not(self.not_expr())
        t = self.peek()
        if t.kind == "lparen":
            self.next()
            inner = self.or_expr()
            close = self.next()
            if close.kind != "rparen":
                raise JqlError(f"{PREFIX}Expecting ')' but got '{close.text or '<EOF>'}'. (line 1, character {close.pos})")
            return inner
        return self.clause()

    def clause(self) -> Clause:
        t = self.next()
        if t.kind not in ("word", "string") or (not t.quoted and t.text.upper() in KEYWORDS):
            got = t.text or "<EOF>"
            raise JqlError(f"{PREFIX}Expecting a field name but got '{got}'. (line 1, character {t.pos})")
        raw = t.text
        field = ALIASES.get(raw.lower())
        if field is None:
            if raw.lower() in KNOWN_UNSUPPORTED or raw.lower().startswith("cf[") or raw.lower().startswith("customfield_"):
                raise JqlError(f"{PREFIX}Field '{raw}' is not supported by this simulated Jira. (line 1, character {t.pos})")
            raise JqlError(f"Field '{raw}' does not exist or you do not have permission to view it.")
        op_tok = self.next()
        if op_tok.kind == "op":
            op = op_tok.text
        elif op_tok.kind == "word" and op_tok.text.upper() == "IN":
            op = "in"
        elif op_tok.kind == "word" and op_tok.text.upper() == "NOT" and self.is_kw("IN"):
            self.next()
            op = "not in"
        else:
            raise JqlError(
                f"{PREFIX}Expecting operator but got '{op_tok.text or '<EOF>'}'. The valid operators are '=', '!=', "
                f"'<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line 1, character {op_tok.pos})")
        if op in ("~", "!~"):
            raise JqlError(f"The operator '{op}' is not supported by the '{raw}' field.")
        if field in LIST_FIELDS and op not in ("=", "!=", "in", "not in"):
            raise JqlError(f"The operator '{op}' is not supported by the '{raw}' field.")
        if field in DATE_FIELDS and op in ("in", "not in"):
            raise JqlError(f"The operator '{op.upper()}' is not supported by the '{raw}' field.")
        if op in ("in", "not in"):
            values = self.value_list()
        else:
            values = [self.value()]
        return Clause(field, op, values, raw)

    def value(self) -> str:
        t = self.next()
        if t.kind == "string":
            return t.text
        if t.kind == "word" and t.text.upper() not in KEYWORDS:
            if self.peek().kind == "lparen":
                raise JqlError(f"{PREFIX}Functions are not supported by this simulated Jira: '{t.text}()'. "
                               f"(line 1, character {t.pos})")
            return t.text
        got = t.text or "<EOF>"
        extra = f" You must surround '{got}' in quotation marks to use it as a value." if t.kind == "word" else ""
        raise JqlError(f"{PREFIX}Expecting either a value, list or function but got '{got}'.{extra} "
                       f"(line 1, character {t.pos})")

    def value_list(self) -> list[str]:
        if self.peek().kind == "word" and self.toks[self.i + 1].kind == "lparen":
            t = self.peek()
            raise JqlError(f"{PREFIX}Functions are not supported by this simulated Jira: '{t.text}()'. "
                           f"(line 1, character {t.pos})")
        t = self.next()
        if t.kind != "lparen":
            raise JqlError(f"{PREFIX}Expecting '(' but got '{t.text or '<EOF>'}'. (line 1, character {t.pos})")
        values = [self.value()]
        while self.peek().kind == "comma":
            self.next()
            values.append(self.value())
        close = self.next()
        if close.kind != "rparen":
            raise JqlError(f"{PREFIX}Expecting ')' but got '{close.text or '<EOF>'}'. (line 1, character {close.pos})")
        return values


def parse(text: str) -> Query:
    where, order = _Parser(text or "").parse()
    return Query(where, order, text or "")


def is_bounded(query: Query) -> bool:
    return query.where is not None


# --- evaluation -----------------------------------------------------------------------------------

Pred = Callable[[Issue], bool]


def _date_ms(value: str, raw_field: str) -> int:
    v = value.strip()
    m = re.fullmatch(r"([+-]?)(\d+)([wdhm])", v)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        unit = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}[m.group(3)]
        return int(time.time() * 1000) + sign * int(m.group(2)) * unit
    if v.isdigit() and len(v) > 8:
        return int(v)
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            dt = datetime.strptime(v, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        return int(dt.timestamp() * 1000)
    raise JqlError(f"Date value '{value}' for field '{raw_field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                   f"'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")


def _resolve(site: Site, c: Clause, subject: Issue | None = None) -> set:
    """The ids a list clause's values denote (project ids, issue ids, type ids, status ids, category keys,
    account ids, lower-cased labels). `subject`, the issue being matched, also resolves its own key or id:
    a `jira:issue_deleted` webhook filter is evaluated after the site has forgotten the issue."""
    out: set = set()
    f = c.field
    for v in c.values:
        if f == "project":
            p = site.project_by_key(v) or next((p for p in site.projects.values() if p.name.lower() == v.lower()), None)
            if p is None:
                raise JqlError(f"The value '{v}' does not exist for the field '{c.raw_field}'.")
            out.add(p.id)
        elif f in ("key", "parent"):
            issue = site.issue(v)
            if issue is None and subject is not None and v.strip().upper() in (subject.key, str(subject.id)):
                issue = subject
            if issue is None:
                if v.strip().isdigit():
                    continue  # Jira: unknown numeric ids simply match nothing
                if "-" not in v or site.project_by_key(v.rsplit("-", 1)[0]) is None or not v.rsplit("-", 1)[1].isdigit():
                    raise JqlError(f"The issue key '{v}' for field '{c.raw_field}' is invalid.")
                raise JqlError(f"An issue with key '{v}' does not exist for field '{c.raw_field}'.")
            out.add(issue.id)
        elif f == "issuetype":
            it = site.issuetype_by_name(v)
            if it is None:
                raise JqlError(f"The value '{v}' does not exist for the field '{c.raw_field}'.")
            out.add(it.id)
        elif f == "status":
            st = site.status_by_name(v)
            if st is None:
                raise JqlError(f"The value '{v}' does not exist for the field '{c.raw_field}'.")
            out.add(st.id)
        elif f == "statuscategory":
            from jirasim.model import STATUS_CATEGORIES

            match = None
            for key, (cid, name, _color) in STATUS_CATEGORIES.items():
                if v.lower() in (key, name.lower(), str(cid)):
                    match = key
            if match is None:
                raise JqlError(f"The value '{v}' does not exist for the field '{c.raw_field}'.")
            out.add(match)
        elif f in ("assignee", "reporter"):
            if v not in site.users:
                raise JqlError(f"The value '{v}' does not exist for the field '{c.raw_field}'.")
            out.add(v)
        elif f == "labels":
            out.add(v.lower())
    return out


def _compile(site: Site, node: object, subject: Issue | None = None) -> Pred:
    if isinstance(node, And):
        preds = [_compile(site, p, subject) for p in node.parts]
        return lambda i: all(p(i) for p in preds)
    if isinstance(node, Or):
        preds = [_compile(site, p, subject) for p in node.parts]
        return lambda i: any(p(i) for p in preds)
    if isinstance(node, Not):
        inner = _compile(site, node.part, subject)
        return lambda i: not inner(i)
    assert isinstance(node, Clause)
    c = node
    if c.field in DATE_FIELDS:
        ms = _date_ms(c.values[0], c.raw_field)
        attr = c.field
        cmp = {
            "=": lambda a: a == ms, "!=": lambda a: a != ms, ">": lambda a: a > ms,
            ">=": lambda a: a >= ms, "<": lambda a: a < ms, "<=": lambda a: a <= ms,
        }[c.op]
        return lambda i: cmp(getattr(i, attr))
    wanted = _resolve(site, c, subject)
    negate = c.op in ("!=", "not in")
    if c.field == "project":
        get: Callable[[Issue], object] = lambda i: i.project_id  # noqa: E731
    elif c.field == "key":
        get = lambda i: i.id  # noqa: E731
    elif c.field == "issuetype":
        get = lambda i: i.issuetype_id  # noqa: E731
    elif c.field == "status":
        get = lambda i: i.status_id  # noqa: E731
    elif c.field == "statuscategory":
        cats = {sid: st.category for sid, st in site.statuses.items()}
        get = lambda i: cats[i.status_id]  # noqa: E731
    elif c.field in ("assignee", "reporter"):
        get = lambda i: getattr(i, c.field)  # noqa: E731
    elif c.field == "labels":
        # The only multi-valued field: `=` asks for any wanted label, `!=` for none of them.
        labels = lambda i: {label.lower() for label in i.labels}  # noqa: E731
        if negate:
            return lambda i: bool(i.labels) and labels(i).isdisjoint(wanted)
        return lambda i: not labels(i).isdisjoint(wanted)
    else:  # parent
        get = lambda i: i.parent_id  # noqa: E731
    if negate and c.field in OPTIONAL_FIELDS:
        return lambda i: get(i) is not None and get(i) not in wanted
    if negate:
        return lambda i: get(i) not in wanted
    return lambda i: get(i) in wanted


def _candidates(site: Site, node: object) -> set[int] | None:
    """A superset of matching issue ids from the indexes, or None (= scan everything)."""
    if isinstance(node, Clause):
        if node.op not in ("=", "in"):
            return None
        if node.field == "project":
            out: set[int] = set()
            for pid in _resolve(site, node):
                out.update(site.by_project.get(pid, ()))
            return out
        if node.field == "key":
            return _resolve(site, node)
        if node.field == "parent":
            out = set()
            for pid in _resolve(site, node):
                out.update(site.children.get(pid, ()))
            return out
        return None
    if isinstance(node, And):
        best: set[int] | None = None
        for part in node.parts:
            cand = _candidates(site, part)
            if cand is not None:
                best = cand if best is None else best & cand
        return best
    if isinstance(node, Or):
        out = set()
        for part in node.parts:
            cand = _candidates(site, part)
            if cand is None:
                return None
            out |= cand
        return out
    return None


def _key_sort(site: Site, issue: Issue) -> tuple[str, int]:
    proj, _, num = issue.key.rpartition("-")
    return proj, int(num) if num.isdigit() else 0


def _sort_value(site: Site, field: str) -> Callable[[Issue], object]:
    if field == "key":
        return lambda i: _key_sort(site, i)
    if field == "id":
        return lambda i: i.id
    if field == "created":
        return lambda i: (i.created, i.id)
    if field == "updated":
        return lambda i: (i.updated, i.id)
    if field == "duedate":
        # Empty values sort last ascending, as Jira does.
        return lambda i: (i.duedate is None, i.duedate or "")
    if field == "priority":
        return lambda i: i.priority_id
    if field == "status":
        return lambda i: site.statuses[i.status_id].name
    if field == "issuetype":
        return lambda i: site.issue_types[i.issuetype_id].name
    if field == "project":
        return lambda i: site.projects[i.project_id].key
    if field == "summary":
        return lambda i: i.summary.lower()
    raise JqlError(f"Not able to sort using field '{field}'.")


def search(site: Site, query: Query | str, *, visible: Callable[[Issue], bool] | None = None) -> list[int]:
    """Matching issue ids in result order. `visible` filters what the caller may browse."""
    q = parse(query) if isinstance(query, str) else query
    if q.where is None:
        ids: Iterable[int] = site.issues.keys()
        pred: Pred = lambda i: True  # noqa: E731
    else:
        pred = _compile(site, q.where)
        cand = _candidates(site, q.where)
        ids = site.issues.keys() if cand is None else cand
    issues = [i for i in (site.issues.get(x) for x in ids) if i is not None and pred(i) and (visible is None or visible(i))]
    order = q.order_by or [("id", True)]  # Jira's default: newest first
    # Stable sorts from the least significant key; ties broken by id for deterministic paging.
    issues.sort(key=lambda i: i.id)
    for field, desc in reversed(order):
        issues.sort(key=_sort_value(site, field), reverse=desc)
    return [i.id for i in issues]


def matches(site: Site, query: Query | str, issue: Issue) -> bool:
    """Whether `issue` matches; it may already be deleted from `site` (see `_resolve`)."""
    q = parse(query) if isinstance(query, str) else query
    return True if q.where is None else _compile(site, q.where, issue)(issue)
