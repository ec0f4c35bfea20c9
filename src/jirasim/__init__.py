"""jirasim: a simulated Jira Cloud for BoxSync's tests, benchmarks and `make run` sandbox.

    sim = Simulator(seed=1)
    app = sim.add_site("main", "http://127.0.0.1:8081", issues=1000)   # the site's ASGI app
    site = sim.site("main")                                              # its data (jirasim.model.Site)

Modules: `model` (data, mutations, change events), `generator` (seeded content), `jql` (the JQL
subset), `render` (Jira JSON), `auth` + `qsh` (Basic, OAuth bearer, Connect JWT), `api/*` + `rest`
(REST endpoints), `faults` (injected failures, counters), `control` (`/_jirasim/…`), `app`, `cli`,
and `host` (the Connect host side: install, iframes, OAuth, webhooks).
"""
