"""`make run`: the Jira sandbox (jirasim) and BoxSync in one process, BoxSync installed into it.

A newcomer gets a simulated Jira Cloud site with seeded issues on http://127.0.0.1:2990 and BoxSync
on its base URL (default http://localhost:8000), installed through the real signed-install path.
Everything the sandbox sets can be overridden with the usual BOXSYNC_* variables.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from urllib.parse import urlsplit

import httpx
import uvicorn

from boxsync import logs
from boxsync.config import ConfigError, Settings

JIRA_HOST = "127.0.0.1"
JIRA_PORT = int(os.environ.get("BOXSYNC_SANDBOX_JIRA_PORT", "2990"))
ISSUES = int(os.environ.get("BOXSYNC_SANDBOX_ISSUES", "300"))
SEED = int(os.environ.get("BOXSYNC_SANDBOX_SEED", "7"))

log = logging.getLogger("boxsync.sandbox")


async def _wait_started(server: uvicorn.Server, what: str) -> None:
    for _ in range(300):
        if server.started:
            return
        if server.should_exit:
            break
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not start (is the port already in use?)")


async def _install(jira_url: str, descriptor_url: str) -> dict:
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(f"{jira_url}/_jirasim/apps/install", json={"descriptorUrl": descriptor_url})
    if resp.status_code != 200:
        raise RuntimeError(f"installing BoxSync into the sandbox failed ({resp.status_code}): {resp.text[:500]}")
    return resp.json()


async def _demo_box(jira_url: str, base_url: str, app_key: str, projects: list[str]) -> str | None:
    """A first Box over the sandbox's projects, so a newcomer sees a WBS at once (made only while
    there is none, through the API as the site admin). Its name, or None when Boxes exist."""
    from jirasim.model import DEFAULT_ADMIN_ACCOUNT_ID

    async with httpx.AsyncClient(timeout=30) as client:
        token = (await client.post(f"{jira_url}/_jirasim/context-token",
                                   json={"appKey": app_key, "accountId": DEFAULT_ADMIN_ACCOUNT_ID})).json()["token"]
        headers = {"Authorization": f"JWT {token}"}
        if (await client.get(f"{base_url}/api/boxes", headers=headers)).json():
            return None
        resp = await client.post(f"{base_url}/api/boxes", headers=headers, json={
            "name": "Sandbox program", "type": "Program", "scope": {"projects": projects},
            "builders": ["project", "jira-parent"]})
        resp.raise_for_status()
        return resp.json()["name"]


async def run() -> int:
    from jirasim.simulator import Simulator

    from boxsync.app import create_app

    jira_url = f"http://{JIRA_HOST}:{JIRA_PORT}"
    os.environ.setdefault("BOXSYNC_INSTALL_KEYS_URL", f"{jira_url}/_jirasim/install-keys")
    os.environ.setdefault("BOXSYNC_OAUTH_URL", jira_url)
    os.environ.setdefault("BOXSYNC_ALL_JS_URL", f"{jira_url}/_jirasim/all.js")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"boxsync sandbox: configuration error: {exc}", file=sys.stderr)
        return 2
    app_port = urlsplit(settings.base_url).port or 80

    sim = Simulator(seed=SEED)
    jira_app = sim.add_site("sandbox", jira_url, issues=ISSUES)
    # Both servers share uvicorn's loggers: start-up lines would come twice, and Alembic announces
    # its plugins. A newcomer should see the links first, then the requests.
    # (access_log=False on either would switch the shared access logger off for both.)
    jira = uvicorn.Server(uvicorn.Config(jira_app, host=JIRA_HOST, port=JIRA_PORT, log_level="warning",
                                         log_config=None))
    boxsync = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=app_port,
                                            log_level="warning", log_config=None))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    servers = [asyncio.create_task(jira.serve()), asyncio.create_task(boxsync.serve())]
    try:
        await _wait_started(jira, f"the Jira sandbox on {jira_url}")
        await _wait_started(boxsync, f"BoxSync on {settings.base_url}")
        installed = await _install(jira_url, f"{settings.base_url}/atlassian-connect.json")
        site = sim.site("sandbox")
        first = min(site.issues.values(), key=lambda i: i.id).key if site.issues else None
        demo = await _demo_box(jira_url, settings.base_url, settings.app_key, [p.key for p in site.projects.values()])
        print(f"""
BoxSync sandbox is running (Ctrl-C stops it).

  BoxSync            {settings.base_url}   (descriptor: {settings.base_url}/atlassian-connect.json)
  Jira sandbox       {jira_url}   ({len(site.issues)} issues, seed {SEED}; clientKey {installed.get('clientKey')})
  An issue + panel   {jira_url}/browse/{first}
  App Configuration  {jira_url}/plugins/servlet/ac/{settings.app_key}/app-configuration
  Boxes              {jira_url}/plugins/servlet/ac/{settings.app_key}/boxes{f"   (a first Box, {demo!r}, was made)" if demo else ""}
  Jira REST          {jira_url}/rest/api/3/serverInfo   (Basic: admin@example.com / jirasim-admin-token)

Requests (to BoxSync and to the Jira sandbox) follow.
""", flush=True)
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        await asyncio.wait(servers, return_when=asyncio.FIRST_COMPLETED)
    except Exception as exc:
        print(f"boxsync sandbox: {exc}", file=sys.stderr)
        return 1
    finally:
        jira.should_exit = boxsync.should_exit = True
        await asyncio.gather(*servers, return_exceptions=True)
    return 0


def main() -> int:
    logs.configure()
    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
