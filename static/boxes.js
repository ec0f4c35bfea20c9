// The Boxes page: the Box hierarchy, a Box's WBS with its live sync, and the create/edit form.
// Everything from Jira or from users is put on the page with textContent, never as HTML.
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
  const STATUS = { "not-started": "Not started", "in-progress": "In progress", closed: "Closed" };
  const MODES = { "auto-basic": "Auto basic", "auto-bottom-up": "Auto bottom-up", "auto-top-down": "Auto top-down",
    manual: "Manual", locked: "Locked" };
  const BUILDERS = { project: "Project", version: "Version", sprint: "Sprint", component: "Component",
    "jira-parent": "Jira hierarchy" };
  const state = { boxes: [], selected: null, editing: null, polling: null, builders: [] };

  function message(text, ok) {
    const m = $("bs-page-message");
    m.textContent = text || "";
    m.className = "bs-message " + (ok ? "bs-ok" : "bs-error");
  }

  async function loadBoxes() {
    state.boxes = await BoxSync.api("/api/boxes");
    renderTree();
  }

  function renderTree() {
    const tree = $("bs-box-tree");
    tree.replaceChildren();
    $("bs-no-boxes").hidden = state.boxes.length > 0;
    const ids = new Set(state.boxes.map((b) => b.id));
    const kids = new Map();
    for (const box of state.boxes) {
      const parent = box.parentId && ids.has(box.parentId) ? box.parentId : null;
      if (!kids.has(parent)) kids.set(parent, []);
      kids.get(parent).push(box);
    }
    const add = (list, parent) => {
      for (const box of kids.get(parent) || []) {
        const button = el("button", { type: "button", class: "bs-box-link", "data-box-id": box.id });
        button.append(el("span", { text: box.name }), el("span", { class: "bs-lozenge", text: box.type }));
        if (state.selected && state.selected.id === box.id) button.classList.add("bs-selected");
        button.addEventListener("click", () => openBox(box.id));
        const item = el("li", {}, button);
        if (kids.has(box.id)) { const sub = el("ul"); add(sub, box.id); item.append(sub); }
        list.append(item);
      }
    };
    add(tree, null);
  }

  // -- a Box: open (sync), status, WBS ------------------------------------------------------------
  async function openBox(id) {
    $("bs-form-pane").hidden = true;
    state.selected = state.boxes.find((b) => b.id === id);
    renderTree();
    $("bs-detail").hidden = false;
    showFacts(state.selected);
    await showWbs(id);
    try {
      showSync(await BoxSync.api(`/api/boxes/${id}/sync`, { method: "POST", body: JSON.stringify({ trigger: "open" }),
        headers: { "Content-Type": "application/json" } }));
      poll(id);
    } catch (e) { message(e.message); }
  }

  function showFacts(box) {
    $("bs-box-name").textContent = box.name;
    const scope = [];
    if (box.scope.projects.length) scope.push("projects " + box.scope.projects.join(", "));
    if (box.scope.jql) scope.push("JQL " + box.scope.jql);
    if (box.scope.filterId) scope.push("filter " + box.scope.filterId);
    const dates = box.start || box.end ? ` · ${box.start || "?"} – ${box.end || "?"}` : "";
    $("bs-box-facts").textContent = `${box.type} · ${STATUS[box.status]}${dates} · scope: ${
      box.scopeType === "none" ? "its sub-Boxes" : (scope.join("; ") || "none yet")} · builders: ${
      box.builders.map((b) => BUILDERS[b] || b).join(" › ") || "none"}`;
  }

  async function resync(continueAnyway) {
    if (!state.selected) return;
    const body = { trigger: "resync" };
    if (continueAnyway) body.continueOnCorruptedIndex = true;
    try {
      showSync(await BoxSync.api(`/api/boxes/${state.selected.id}/sync`, { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" } }));
      poll(state.selected.id);
    } catch (e) { message(e.message); }
  }

  function poll(id) {
    clearTimeout(state.polling);
    const tick = async () => {
      if (!state.selected || state.selected.id !== id) return;
      let status;
      try { status = await BoxSync.api(`/api/boxes/${id}/sync`); } catch (e) { message(e.message); return; }
      showSync(status);
      if (status.state === "running") state.polling = setTimeout(tick, 500);
      else await showWbs(id);
    };
    state.polling = setTimeout(tick, 300);
  }

  function showSync(s) {
    const text = $("bs-sync-text"), bar = $("bs-sync-progress");
    $("bs-continue").hidden = s.state !== "refused";
    bar.hidden = s.state !== "running";
    $("bs-sync").dataset.state = s.state;
    if (s.state === "running") {
      const stage = (s.stage || "queued").replace("-", " ");
      text.textContent = s.total ? `Syncing: ${stage} ${s.done} of ${s.total}` : `Syncing: ${stage}…`;
      bar.max = s.total || 1; bar.value = s.total ? s.done : 0;
      if (!s.total) bar.removeAttribute("value");
    } else if (s.state === "done") {
      const c = s.counts || {};
      text.textContent = `Synced ${new Date(s.finishedAt).toLocaleString()}: ${c.added || 0} added, ${
        c.changed || 0} changed, ${c.removed || 0} removed, ${c.moved || 0} moved in the WBS.`;
    } else if (s.state === "refused" || s.state === "failed") {
      text.textContent = (s.state === "refused" ? "Sync refused: " : "Sync failed: ") + (s.reason || "");
    } else {
      text.textContent = "Not synced yet.";
    }
  }

  async function showWbs(id) {
    let data;
    try { data = await BoxSync.api(`/api/boxes/${id}/wbs`); } catch (e) { message(e.message); return; }
    const body = $("bs-wbs").querySelector("tbody");
    body.replaceChildren();
    const depth = new Map();
    for (const node of data.nodes) {
      const d = node.parentId ? (depth.get(node.parentId) || 0) + 1 : 0;
      depth.set(node.id, d);
      const label = el("td", { class: "bs-work" });
      label.style.paddingLeft = (8 + 18 * d) + "px";
      if (node.kind !== "issue") {
        label.append(el("span", { class: "bs-lozenge", text: node.kind }), " ",
          el("span", { text: node.restricted ? "Restricted" : node.summary }));
      } else if (node.restricted) {
        label.append(el("span", { class: "bs-muted", text: "Restricted task" }));
      } else {
        label.append(el("span", { class: "bs-key", text: node.issueKey }), " ", el("span", { text: node.summary }));
      }
      const status = node.status ? el("span", { class: "bs-status bs-cat-" + (node.statusCategory || "new"), text: node.status }) : "";
      body.append(el("tr", { "data-node-id": node.id, "data-kind": node.kind }, label,
        el("td", { text: node.start || "" }), el("td", { text: node.end || "" }), el("td", {}, status),
        el("td", { text: node.progress == null ? "" : Math.round(node.progress) + "%" }),
        el("td", { text: MODES[node.taskMode] || "" })));
    }
    const empty = $("bs-wbs-empty");
    empty.hidden = data.nodes.length > 0;
    $("bs-wbs").hidden = data.nodes.length === 0;
    empty.textContent = "No tasks in this Box yet. Its scope rules select the Jira issues it holds; a sync brings them in.";
  }

  // -- the form ------------------------------------------------------------------------------------
  async function showForm(box) {
    state.editing = box;
    delete $("bs-box-form").dataset.ready;
    $("bs-detail").hidden = true;
    $("bs-form-pane").hidden = false;
    $("bs-form-title").textContent = box ? `Edit ${box.name}` : "Create Box";
    $("bs-form-message").textContent = "";
    document.querySelectorAll(".bs-invalid").forEach((n) => n.classList.remove("bs-invalid"));
    const types = await BoxSync.api("/api/box-types").catch(() => ["Portfolio", "Program", "Project", "Iteration"]);
    $("f-type").replaceChildren(...types.map((t) => el("option", { value: t, text: t })));
    $("f-parentId").replaceChildren(el("option", { value: "", text: "None (top level)" }),
      ...state.boxes.filter((b) => !box || b.id !== box.id).map((b) => el("option", { value: b.id, text: b.name })));
    const v = box || { name: "", type: "Project", scopeType: "own", parentId: null, status: "not-started", start: null,
      end: null, scopeOwner: "", scope: { projects: [], jql: null, filterId: null }, builders: [], taskMode: "auto-basic" };
    $("f-name").value = v.name; $("f-type").value = v.type; $("f-scopeType").value = v.scopeType;
    $("f-parentId").value = v.parentId || ""; $("f-status").value = v.status;
    $("f-start").value = v.start || ""; $("f-end").value = v.end || "";
    $("f-scopeOwner").value = v.scopeOwner || ""; $("f-projects").value = v.scope.projects.join(", ");
    $("f-jql").value = v.scope.jql || ""; $("f-filterId").value = v.scope.filterId || "";
    $("f-taskMode").value = v.taskMode;
    $("f-type").disabled = $("f-scopeType").disabled = !!box;  // fixed at creation
    state.builders = [...v.builders];
    renderBuilders();
    $("bs-box-form").dataset.ready = "1";  // filled in: the form can be used
    $("f-name").focus();
  }

  function renderBuilders() {
    const list = $("f-builders");
    list.replaceChildren();
    state.builders.forEach((name, i) => {
      const up = el("button", { type: "button", class: "bs-link", "aria-label": "Move up", text: "↑" });
      const remove = el("button", { type: "button", class: "bs-link", "aria-label": "Remove", text: "Remove" });
      up.disabled = i === 0;
      up.addEventListener("click", () => { [state.builders[i - 1], state.builders[i]] = [state.builders[i], state.builders[i - 1]]; renderBuilders(); });
      remove.addEventListener("click", () => { state.builders.splice(i, 1); renderBuilders(); });
      const label = name.startsWith("link:") ? `Issue link type ${name.slice(5)}` : BUILDERS[name];
      list.append(el("li", { "data-builder": name }, el("span", { text: label }), " ", up, " ", remove));
    });
  }

  function addBuilder() {
    const kind = $("f-builder-add").value;
    const name = kind === "link" ? "link:" + $("f-builder-link").value.trim() : kind;
    if (!state.builders.includes(name)) state.builders.push(name);
    renderBuilders();
  }

  function formBody() {
    const text = (id) => $(id).value.trim() || null;
    const body = {
      name: $("f-name").value, status: $("f-status").value, parentId: text("f-parentId"),
      start: text("f-start"), end: text("f-end"), taskMode: $("f-taskMode").value, builders: state.builders,
      scope: { projects: $("f-projects").value.split(/[\s,]+/).filter(Boolean).map((k) => k.toUpperCase()),
        jql: text("f-jql"), filterId: text("f-filterId") },
    };
    if (text("f-scopeOwner")) body.scopeOwner = text("f-scopeOwner");
    if (!state.editing) { body.type = $("f-type").value; body.scopeType = $("f-scopeType").value; }
    if (body.scopeType === "none" || (state.editing && state.editing.scopeType === "none")) body.scope = null;
    return body;
  }

  async function save(event) {
    event.preventDefault();
    document.querySelectorAll(".bs-invalid").forEach((n) => n.classList.remove("bs-invalid"));
    const out = $("bs-form-message");
    out.className = "bs-message"; out.textContent = "Saving…";
    try {
      const path = state.editing ? `/api/boxes/${state.editing.id}` : "/api/boxes";
      const box = await BoxSync.api(path, { method: state.editing ? "PATCH" : "POST", body: JSON.stringify(formBody()),
        headers: { "Content-Type": "application/json" } });
      out.textContent = "";
      await loadBoxes();
      message(`Saved ${box.name}.`, true);
      await openBox(box.id);
    } catch (e) {
      out.className = "bs-message bs-error"; out.textContent = e.message;
      const field = e.field && document.querySelector(`[name="${e.field}"], [data-name="${e.field}"]`);
      if (field) { field.classList.add("bs-invalid"); if (field.focus) field.focus(); }
    }
  }

  async function remove() {
    const box = state.selected;
    if (!box || !window.confirm(`Delete the Box "${box.name}"? Its WBS is deleted; nothing changes in Jira.`)) return;
    try {
      await BoxSync.api(`/api/boxes/${box.id}`, { method: "DELETE" });
      state.selected = null; $("bs-detail").hidden = true;
      await loadBoxes();
      message(`Deleted ${box.name}.`, true);
    } catch (e) { message(e.message); }
  }

  // R twice (within a second, not while typing) re-syncs the open Box, as in BigPicture.
  let lastR = 0;
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test((e.target && e.target.tagName) || "");
    if (typing || e.ctrlKey || e.metaKey || e.altKey || e.key.toLowerCase() !== "r") return;
    const now = Date.now();
    if (now - lastR < 1000) { lastR = 0; resync(false); } else lastR = now;
  });

  document.addEventListener("DOMContentLoaded", async () => {
    $("bs-new-box").addEventListener("click", () => showForm(null));
    $("bs-edit").addEventListener("click", () => showForm(state.selected));
    $("bs-delete").addEventListener("click", remove);
    $("bs-resync").addEventListener("click", () => resync(false));
    $("bs-continue").addEventListener("click", () => resync(true));
    $("bs-cancel").addEventListener("click", () => { $("bs-form-pane").hidden = true; if (state.selected) $("bs-detail").hidden = false; });
    $("bs-box-form").addEventListener("submit", save);
    $("f-builder-add").addEventListener("change", () => { $("f-builder-link").hidden = $("f-builder-add").value !== "link"; });
    $("f-builder-add-button").addEventListener("click", addBuilder);
    try { await loadBoxes(); } catch (e) { message(e.message); }
  });
})();
