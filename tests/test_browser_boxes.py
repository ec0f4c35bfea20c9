"""The pages in a real browser (Debian's chromium driven by Playwright), inside jirasim's host
pages as Jira would frame them: the WBS issue panel on the issue view, and creating a Box on the
Boxes page."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.boxsync.boxkit import world
from tests.support import browser
from tests.support.ci import unavailable

HOSTILE = '<img src=x onerror="window.__owned = 1">Fix <b>login</b>'
# Screenshots are kept here when set (to look at them), else in the test's temporary directory.
SHOTS = os.environ.get("BOXSYNC_SCREENSHOTS")


@pytest.fixture
def w(tmp_path):
    reason = browser.missing()
    if reason:
        unavailable(reason)
    with world(f"sqlite+aiosqlite:///{tmp_path}/boxsync.db", issues=40) as made:
        yield made


def _shot(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    return str(path)


def _keep(path: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        shutil.copy(path, SHOTS)


async def test_the_issue_view_shows_the_wbs_panel_in_its_iframe(w, tmp_path):
    box = w.create_box(name="Alpha delivery", builders=["jira-parent"])
    site = w.jira
    child = next(i for i in site.issues.values() if i.parent_id and site.projects[i.project_id].key == "ALPHA"
                 and site.issue(i.parent_id).project_id == i.project_id)
    parent = site.issue(child.parent_id)
    assert httpx.put(f"{w.site}/_jirasim/issues/{child.key}", json={"fields": {"summary": HOSTILE}}).status_code == 200
    assert w.sync(box["id"])["state"] == "done"
    async with browser.browser() as chromium:
        page = await chromium.new_page(viewport={"width": 1200, "height": 900})
        response = await page.goto(f"{w.site}/browse/{child.key}")
        assert response is not None and response.status == 200
        frame_element = await page.wait_for_selector("iframe")
        frame = await frame_element.content_frame()
        current = await frame.wait_for_selector(".bs-current", timeout=15_000)
        # The summary is shown as text, tags and all, and nothing in it ran.
        assert HOSTILE in await current.inner_text()
        assert await frame.evaluate("window.__owned") is None
        assert await frame.query_selector(".bs-current img") is None
        # Focused mode: the ancestors above the issue (its Jira parent), then the issue.
        titles = await frame.eval_on_selector_all(".bs-node .bs-key", "nodes => nodes.map(n => n.textContent)")
        assert titles.index(parent.key) < titles.index(child.key)
        assert await frame.text_content("#bs-panel-box-name") == "Alpha delivery"
        await frame.click("[data-mode=overview]")
        await frame.wait_for_selector(".bs-current")
        shot = _shot(tmp_path, "panel.png")
        await page.screenshot(path=shot, full_page=True)
        _keep(shot)

        # An issue in no Box: the empty state, with the way to create one.
        other = next(i for i in site.issues.values() if site.projects[i.project_id].key == "BETA")
        await page.goto(f"{w.site}/browse/{other.key}")
        frame = await (await page.wait_for_selector("iframe")).content_frame()
        empty = await frame.wait_for_selector("#bs-panel-empty:not([hidden])", timeout=15_000)
        assert "is not in any Box yet" in await empty.inner_text()
        assert await frame.get_attribute("#bs-panel-create", "href") == f"{w.site}/plugins/servlet/ac/boxsync/boxes"


async def test_an_admin_creates_a_box_on_the_boxes_page_and_sees_its_wbs(w, tmp_path):
    async with browser.browser() as chromium:
        page = await chromium.new_page(viewport={"width": 1280, "height": 900})
        response = await page.goto(f"{w.site}/plugins/servlet/ac/boxsync/boxes")
        assert response is not None and response.status == 200
        frame = await (await page.wait_for_selector("iframe")).content_frame()
        await frame.wait_for_selector("#bs-no-boxes:not([hidden])")
        await frame.click("#bs-new-box")
        await frame.wait_for_selector("#bs-box-form[data-ready]")
        # A bad value is refused next to its field, and nothing is created.
        await frame.fill("#f-name", "Beta programme")
        await frame.fill("#f-projects", "BETA")
        await frame.fill("#f-start", "2026-03-01")
        await frame.fill("#f-end", "2026-02-01")
        await frame.click("#bs-save")
        await frame.wait_for_selector("#f-end.bs-invalid")
        assert "end" in await frame.text_content("#bs-form-message")
        assert w.api("GET", "/api/boxes").json() == []
        await frame.fill("#f-end", "2026-06-30")
        await frame.select_option("#f-builder-add", "project")
        await frame.click("#f-builder-add-button")
        await frame.select_option("#f-builder-add", "jira-parent")
        await frame.click("#f-builder-add-button")
        await frame.click("#bs-save")
        await frame.wait_for_selector(".bs-box-link.bs-selected")
        assert "Beta programme" in await frame.text_content("#bs-box-tree")
        # Opening the Box synced it: the WBS shows BETA's issues under their project.
        await frame.wait_for_selector("#bs-sync[data-state=done]", timeout=30_000)
        await frame.wait_for_selector("tr[data-kind=issue]")
        beta = w.jira.project_by_key("BETA")
        rows = await frame.eval_on_selector_all("tr[data-kind=issue]", "rows => rows.length")
        assert rows == len(w.jira.by_project[beta.id])
        assert await frame.text_content("tr[data-kind=project] .bs-work") == "project Beta Project"
        boxes = w.api("GET", "/api/boxes").json()
        assert [(b["name"], b["builders"], b["start"], b["end"]) for b in boxes] == [
            ("Beta programme", ["project", "jira-parent"], "2026-03-01", "2026-06-30")]
        shot = _shot(tmp_path, "boxes.png")
        await page.screenshot(path=shot, full_page=True)
        _keep(shot)
        # R twice re-syncs the open Box.
        before = w.api("GET", f"/api/boxes/{boxes[0]['id']}/sync").json()["runId"]
        await frame.click("h2#bs-box-name")
        await page.keyboard.press("r")
        await page.keyboard.press("r")
        await frame.wait_for_function(
            f"document.querySelector('#bs-sync').dataset.state === 'done'", timeout=30_000)
        for _ in range(100):
            if w.api("GET", f"/api/boxes/{boxes[0]['id']}/sync").json()["runId"] != before:
                break
            await page.wait_for_timeout(100)
        status = w.api("GET", f"/api/boxes/{boxes[0]['id']}/sync").json()
        assert status["runId"] != before and status["trigger"] == "resync"
