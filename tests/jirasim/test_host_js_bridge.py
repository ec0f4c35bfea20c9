"""The Connect JS bridge end to end: `AP.context.getToken()` in an iframe → postMessage to the host
page script → `POST /_jirasim/context-token` on the running site → token back in the iframe.

Runs the real `all.js` and the real host-page script (taken from the served pages) under Node with
two minimal window objects wired by postMessage; skipped when Node is not installed, failed instead
when CI is set (tests/support/ci.py)."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

from tests.jirasim.hostkit import ADMIN_ACCOUNT_ID, Peer, running
from tests.support.ci import unavailable

NODE = shutil.which("node")

HARNESS = r"""
const vm = require("vm");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
function dispatch(target, data, source) {
  setTimeout(() => target._listeners.forEach((f) => f({ data: JSON.parse(JSON.stringify(data)), source })), 0);
}
const host = { _listeners: [], addEventListener(t, f) { if (t === "message") this._listeners.push(f); } };
const child = { _listeners: [], addEventListener(t, f) { if (t === "message") this._listeners.push(f); } };
child.parent = { postMessage: (data) => dispatch(host, data, child) };
child.postMessage = (data) => dispatch(child, data, host);
host.postMessage = (data) => dispatch(host, data, host);
const frame = { contentWindow: child, style: {}, getAttribute: () => input.dataConnect };
vm.runInNewContext(input.bridge, {
  window: host, JSON, String,
  document: { querySelectorAll: () => [frame] },
  fetch: (url, options) => fetch(input.site + url, options),
});
const ctx = { window: child, Promise, Error, JSON, console };
vm.runInNewContext(input.allJs, ctx);
(async () => {
  const token = await child.AP.context.getToken();
  const viaCallback = await new Promise((resolve) => child.AP.context.getToken((t) => resolve(t)));
  const context = await child.AP.context.getContext();
  child.AP.resize("100%", 321);
  await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ token, viaCallback, context, height: frame.style.height }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""

PANEL = {"webPanels": [{"key": "panel", "name": {"value": "P"}, "location": "atl.jira.view.issue.right.context",
                        "url": "/ui/panel?issueKey={issue.key}"}]}


def test_ap_context_get_token_through_the_host_page(tmp_path):
    if NODE is None:
        unavailable("node is not installed")
    with running(Peer(modules=PANEL)) as env:
        env.install()
        issue = env.create_issue("DEMO", "bridge")
        page = env.client.get(f"{env.site_url}/browse/{issue.key}").text
        bridge = next(s for s in re.findall(r"<script>(.*?)</script>", page, re.S) if "context-token" in s)
        data_connect = html.unescape(re.search(r'data-connect="([^"]+)"', page).group(1))
        all_js = env.client.get(f"{env.site_url}/_jirasim/all.js").text
        script = tmp_path / "harness.js"
        script.write_text(HARNESS)
        done = subprocess.run([NODE, str(script)], input=json.dumps({
            "bridge": bridge, "allJs": all_js, "site": env.site_url, "dataConnect": data_connect}),
            capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        verdict, claims = env.peer.verify_hs256(out["token"], "POST", "/api/anything", context=True)
        assert verdict == "ok" and claims["sub"] == ADMIN_ACCOUNT_ID
        assert env.peer.verify_hs256(out["viaCallback"], "GET", "/x", context=True)[0] == "ok"
        assert out["context"]["jira"]["issue"]["key"] == issue.key
        assert out["context"]["jira"]["project"]["key"] == "DEMO"
        assert out["height"] == "321px"
