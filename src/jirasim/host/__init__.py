"""The Connect host side of a simulated site: install keys, app install/lifecycle, iframe host
pages, all.js, the OAuth 2.0 token endpoint and webhook delivery.

`jirasim.app` mounts `routes(sim, site)` on each site and runs `startup`/`shutdown` in its lifespan.
Modules: `keys` (RS256 install keys), `connect` (install, lifecycle, control API), `pages` (issue view,
servlet pages, context tokens, all.js), `oauth` (JWT-bearer token endpoint), `webhooks`
(registrations, payloads, JQL filters, REST), `delivery` (worker, retries, faults), `signing` (JWT
shapes), `state` (host state attached to model objects). They read and change `jirasim.model` directly.

Endpoints on every site (control ones need no auth):
  GET  /_jirasim/install-keys/{kid}            PEM public key (404 unknown); any site serves all kids
                                               of its Simulator → BOXSYNC_INSTALL_KEYS_URL=<site>/_jirasim/install-keys
  POST /oauth2/token                           JWT-bearer grant; aud = the site base → BOXSYNC_OAUTH_URL=<site>
  POST /_jirasim/apps/install {descriptorUrl | descriptor, tamper?}
                                               200 {key, clientKey, oauthClientId, appAccountId, status:"installed", …}
                                               400 descriptor errors, 502 {error, status, body} when the app refuses
  GET  /_jirasim/apps  ·  GET /_jirasim/apps/{key} (includes sharedSecret)
  POST /_jirasim/apps/{key}/uninstall|enable|disable   the callbacks (and install's `enabled`) are
                                               queued on the lifecycle dispatcher, delivered async
  GET|POST|DELETE /_jirasim/lifecycle/faults   {hold: true|[events], drop, duplicate, delay_ms, reorder, seed}
  POST /_jirasim/lifecycle/release {order: fifo|reverse|shuffle}   deliver the held callbacks now
  GET|DELETE /_jirasim/lifecycle/deliveries · POST /_jirasim/lifecycle/flush · GET|PUT …/settings
  GET|POST /_jirasim/lifecycle/clock {offset_ms | advance_ms}   the clock lifecycle tokens' iat uses
  GET  /browse/{issueKey}?as=<accountId>       issue view with signed web-panel iframes
  GET  /plugins/servlet/ac/{appKey}/{moduleKey}?as=…&project.key=…   general/admin/configure pages
  POST /_jirasim/context-token {appKey, accountId, context}   → {token, expiresIn}
  GET  /_jirasim/all.js                        the AP bridge for iframes
  /rest/api/{3,2,latest}/webhook[/refresh|/failed]   dynamic webhooks (Connect app JWT)
  /rest/webhooks/1.0/webhook[/{id}]            admin webhooks (Jira admin)
  GET  /_jirasim/webhooks                      all registrations
  GET|POST|DELETE /_jirasim/webhooks/faults    {drop, duplicate, delay_ms, reorder, hold, seed}
  POST /_jirasim/webhooks/release {order}      deliver messages parked by `hold`
  GET|PUT /_jirasim/webhooks/settings          {retry_delays_ms: [...], timeout_ms, secondary_delay_ms}
  GET|DELETE /_jirasim/webhooks/deliveries     attempts (?identifier=&event=&kind=&appKey=&outcome=)
  POST /_jirasim/webhooks/flush {timeout_ms?}  waits until nothing is queued/delayed/retrying → {idle, pending, held}
                                               (cascades, e.g. issuelink_deleted of a deleted issue, go on
                                               the Secondary flow, after the Primary event)
  GET|POST /_jirasim/webhooks/clock {advance_ms}   the clock dynamic-webhook expiry uses
"""
from __future__ import annotations


from starlette.routing import BaseRoute

from jirasim.host import connect, keys, oauth, pages, webhooks
from jirasim.model import Site, Sites


def routes(sim: Sites, site: Site) -> list[BaseRoute]:
    return [
        *keys.routes(sim, site),
        *connect.routes(sim, site),
        *pages.routes(sim, site),
        *oauth.routes(sim, site),
        *webhooks.routes(sim, site),
    ]


async def startup(sim: Sites, site: Site) -> None:
    keys.site_key(sim, site)  # pay the RSA cost at startup, not during the first install
    await connect.startup(sim, site)
    await webhooks.startup(sim, site)


async def shutdown(sim: Sites, site: Site) -> None:
    await webhooks.shutdown(sim, site)
    await connect.shutdown(sim, site)
