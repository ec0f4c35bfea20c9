"""The site runner: `Simulator` builds simulated Jira Cloud sites (the model, filled by the
generator) and serves each as an ASGI app (jirasim.app). It sits on top of jirasim: the model below
knows nothing of it.

    sim = Simulator(seed=7)
    app = sim.add_site("a", "http://127.0.0.1:2990", issues=1000)   # serve `app` with any ASGI server
    site = sim.site("a")                                             # the model, to read or change
"""
from __future__ import annotations

from jirasim.app import build_site_app
from jirasim.generator import populate
from jirasim.model import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_TOKEN, Site, Sites
from jirasim.render import EVENTS


class Simulator(Sites):
    """Several simulated sites sharing a seed. `add_site` returns the site's ASGI app."""

    def add_site(self, name: str, base_url: str, *, issues: int = 0, projects: int | list[str] | None = None,
                 admin_email: str = DEFAULT_ADMIN_EMAIL, admin_token: str = DEFAULT_ADMIN_TOKEN,
                 seed: int | None = None, field_ids: dict[str, str] | None = None):  # noqa: ANN201 - a Starlette app
        """`field_ids` renumbers custom fields for this site ({START_DATE_FIELD: "customfield_10100"}),
        since custom field ids differ from one Jira Cloud site to the next."""
        if name in self.sites:
            raise ValueError(f"site {name!r} already exists")
        site = Site(name, base_url, admin_email=admin_email, admin_token=admin_token)
        for usual_id, site_id in (field_ids or {}).items():
            site.set_field_id(usual_id, site_id)
        populate(site, issues=issues, projects=projects, seed=self.seed if seed is None else seed)
        site.renderer = EVENTS
        self.sites[name] = site
        return build_site_app(self, site)
