"""Host-side state that belongs to a Simulator (its Sites) or a Site but lives outside the core model.

The core model (`jirasim.model`) owns users, issues and installed apps; the Connect host adds install
keys, webhook registrations and the delivery worker. We attach those to the core objects without
changing their classes: as an attribute when the object accepts one, else in a table keyed by id()
that is cleaned up when the object is garbage-collected (so a new object reusing the id starts clean).
"""
from __future__ import annotations


import weakref
from typing import Callable, TypeVar

from jirasim.model import Site, Sites

T = TypeVar("T")

_ATTR = "_jirasim_host_state"
_fallback: dict[tuple[int, str], object] = {}


def attached(owner: Sites | Site, name: str, factory: Callable[[], T]) -> T:
    """The `name` state of `owner`, created with `factory()` on first use."""
    attr = f"{_ATTR}_{name}"
    existing = getattr(owner, attr, None)
    if existing is not None:
        return existing  # type: ignore[return-value]
    key = (id(owner), name)
    if key in _fallback:
        return _fallback[key]  # type: ignore[return-value]
    value = factory()
    try:
        setattr(owner, attr, value)
    except (AttributeError, TypeError):  # slots or frozen dataclass
        _fallback[key] = value
        try:
            weakref.finalize(owner, _fallback.pop, key, None)
        except TypeError:  # not weak-referenceable: keep it for the process lifetime
            pass
    return value
