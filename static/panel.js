// The WBS issue panel: the issue's place in a Box's WBS, from stored data at once, refreshed when the
// sync that opening the panel started has finished. Jira data goes on the page as text only.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  };
  const MODES = { "auto-basic": "Auto basic", "auto-bottom-up": "Auto bottom-up", "auto-top-down": "Auto top-down",
    manual: "Manual", locked: "Locked" };
  const panel = () => $("bs-panel");
  const state = { mode: "focused", boxId: null, data: null, timer: null };

  function row(node, depth, current) {
    const item = el("li", { class: "bs-node" + (current ? " bs-current" : ""), "data-node-id": node.id });
    item.style.paddingLeft = (4 + 14 * depth) + "px";
    const title = el("div", { class: "bs-node-title" });
    if (node.kind !== "issue") {
      title.append(el("span", { class: "bs-lozenge", text: node.kind }), " ",
        el("span", { text: node.restricted ? "Restricted" : (node.summary || "") }));
    } else if (node.restricted) {
      title.append(el("span", { class: "bs-muted", text: "Restricted task" }));
    } else {
      title.append(el("span", { class: "bs-key", text: node.issueKey }), " ", el("span", { text: node.summary || "" }));
    }
    item.append(title);
    if (node.kind === "issue" && !node.restricted) {
      const facts = [node.start || node.end ? `${node.start || "?"} → ${node.end || "?"}` : "no dates"];
      if (node.progress != null) facts.push(Math.round(node.progress) + "%");
      if (node.taskMode) facts.push(MODES[node.taskMode] || node.taskMode);
      const meta = el("div", { class: "bs-node-meta" },
        el("span", { class: "bs-status bs-cat-" + (node.statusCategory || "new"), text: node.status || "" }),
        " ", el("span", { class: "bs-muted", text: facts.join(" · ") }));
      item.append(meta);
    } else if (node.kind !== "issue" && (node.start || node.end) && !node.restricted) {
      item.append(el("div", { class: "bs-node-meta bs-muted", text: `${node.start || "?"} → ${node.end || "?"}` }));
    }
    return item;
  }

  function render() {
    const d = state.data, tree = $("bs-panel-tree");
    tree.replaceChildren();
    $("bs-panel-empty").hidden = !!(d && d.boxes.length);
    const select = $("bs-panel-box");
    select.hidden = !d || d.boxes.length < 2;
    $("bs-panel-box-name").textContent = d && d.boxes.length === 1 ? d.boxes[0].name : "";
    if (d && d.boxes.length > 1) {
      select.replaceChildren(...d.boxes.map((b) => el("option", { value: b.id, text: b.name })));
      select.value = d.boxId;
    }
    if (!d || !d.node) return;
    let depth = 0;
    for (const a of d.ancestors) tree.append(row(a, depth++, false));
    if (state.mode === "overview") {
      for (const s of d.siblings) {
        tree.append(row(s, depth, s.id === d.node.id));
        if (s.id === d.node.id) for (const c of d.children) tree.append(row(c, depth + 1, false));
      }
      if (d.moreSiblings) tree.append(el("li", { class: "bs-muted", text: "…more at this level" }));
    } else {
      tree.append(row(d.node, depth, true));
      for (const c of d.children) tree.append(row(c, depth + 1, false));
    }
    if (d.moreChildren) tree.append(el("li", { class: "bs-muted", text: "…more children" }));
  }

  function showSync(s) {
    const out = $("bs-panel-sync");
    if (!s) { out.textContent = ""; return; }
    if (s.state === "running") {
      out.textContent = s.total ? `Syncing… ${s.done} of ${s.total}` : "Syncing…";
    } else if (s.state === "refused" || s.state === "failed") {
      out.textContent = (s.state === "refused" ? "Sync refused: " : "Sync failed: ") + (s.reason || "");
    } else if (s.state === "done" && s.finishedAt) {
      out.textContent = "Synced " + new Date(s.finishedAt).toLocaleString();
    } else out.textContent = "";
    panel().dataset.syncState = s.state;
  }

  async function load() {
    const issueId = panel().dataset.issueId;
    if (!issueId) { $("bs-panel-empty").hidden = false; return; }
    const query = state.boxId ? `?boxId=${encodeURIComponent(state.boxId)}` : "";
    try {
      state.data = await BoxSync.api(`/api/panel/${encodeURIComponent(issueId)}${query}`);
      $("bs-panel-error").textContent = "";
    } catch (e) {
      if (e.status === 404) { state.data = { boxes: [], node: null }; render(); return; }
      $("bs-panel-error").textContent = e.message; return;
    }
    state.boxId = state.data.boxId;
    render();
    showSync(state.data.sync);
    clearTimeout(state.timer);
    // While the sync this panel started runs, follow it, then show its result.
    if (state.data.sync && state.data.sync.state === "running") state.timer = setTimeout(load, 700);
    if (window.AP && AP.resize) AP.resize();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("bs-panel-box").addEventListener("change", (e) => { state.boxId = e.target.value; load(); });
    document.querySelectorAll("[data-mode]").forEach((button) => button.addEventListener("click", () => {
      state.mode = button.dataset.mode;
      document.querySelectorAll("[data-mode]").forEach((b) => b.classList.toggle("bs-mode-on", b === button));
      render();
    }));
    load();
  });
})();
