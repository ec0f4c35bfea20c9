// App Configuration: the field mapping (general and per-project overrides) and the dependency
// mapping, read from and saved to /api/mappings/*. Everything from Jira (field, project and link
// type names) is set as text, never as HTML.
(function () {
  "use strict";

  const ATTRIBUTES = [
    ["start", "Start"], ["end", "End"], ["baselineStart", "Baseline start"], ["baselineEnd", "Baseline end"],
    ["progress", "Progress"], ["taskMode", "Task mode"],
  ];
  const DEPENDENCY_TYPES = [
    ["FS", "Finish to start (FS)"], ["SS", "Start to start (SS)"], ["FF", "Finish to finish (FF)"],
    ["SF", "Start to finish (SF)"], ["soft", "Soft"],
  ];
  const STATUS_CATEGORY = "statusCategory";
  const MAX_SITE_PROJECTS = 1000;  // GET /api/mappings/fields lists at most this many of the site's projects

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node && key !== "list") node[key] = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    children.flat().forEach((child) => node.append(child));
    return node;
  }

  function option(value, label, selected, disabled) {
    return el("option", { value, text: label, selected: !!selected, disabled: !!disabled });
  }

  function say(form, text, ok) {
    const message = form.querySelector(".bs-message");
    message.textContent = text;
    message.className = "bs-message " + (ok ? "bs-ok" : "bs-error");
  }

  function clearInvalid(form) {
    form.querySelectorAll(".bs-invalid").forEach((node) => {
      node.classList.remove("bs-invalid");
      node.removeAttribute("aria-invalid");
    });
  }

  // On a 422 the API names the field at fault ("projects.ALPHA.end", "[1].linkTypeId"): point at
  // it, and say it in the page's words rather than the API's path.
  function showError(form, error) {
    const message = error.message || String(error);
    const target = error.field ? form.querySelector(`[data-path="${CSS.escape(error.field)}"]`) : null;
    if (!target) {
      say(form, message, false);
      return;
    }
    const reason = message.startsWith(error.field + ": ") ? message.slice(error.field.length + 2) : message;
    say(form, `${target.dataset.label || error.field}: ${reason}`, false);
    target.classList.add("bs-invalid");
    target.setAttribute("aria-invalid", "true");
    target.focus();
  }

  async function saving(form, work) {
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    clearInvalid(form);
    say(form, "Saving…", true);
    try {
      await work();
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  }

  // -- field mapping ----------------------------------------------------------------------------

  const fields = { candidates: [], projects: new Map(), overrides: new Map() };

  function fieldSelect(path, attr, value) {
    const select = el("select", { id: "bs-f-" + path.replace(/\W/g, "-"), dataset: { path, attr } });
    select.append(option("", "Not synchronized", value === null));
    if (attr === "progress") {
      select.append(option(STATUS_CATEGORY, "Status category (To Do 0%, In Progress 50%, Done 100%)",
                           value === STATUS_CATEGORY));
    }
    const fitting = fields.candidates.filter((f) => f.attributes.includes(attr));
    fitting.forEach((f) => select.append(option(f.id, `${f.name} (${f.id})`, f.id === value)));
    if (value && value !== STATUS_CATEGORY && !fitting.some((f) => f.id === value)) {
      // Mapped to a field the site no longer offers for this: show it, so saving says what is wrong.
      select.append(option(value, `Unknown field (${value})`, true));
    }
    return select;
  }

  function mappingGrid(prefix, mapping, where) {
    const grid = el("div", { className: "bs-grid" });
    ATTRIBUTES.forEach(([attr, label]) => {
      const path = `${prefix}.${attr}`;
      const select = fieldSelect(path, attr, mapping[attr]);
      select.dataset.label = `${where}, ${label}`;
      grid.append(el("label", { htmlFor: select.id, text: label }), select);
    });
    return grid;
  }

  function readGrid(container) {
    const out = {};
    container.querySelectorAll("select[data-attr]").forEach((select) => {
      out[select.dataset.attr] = select.value === "" ? null : select.value;
    });
    return out;
  }

  function renderOverride(key, mapping) {
    const name = fields.projects.get(key);
    const box = el("fieldset", { className: "bs-override",
                                 dataset: { project: key, path: `projects.${key}`, label: `Project ${key}` } });
    const remove = el("button", { type: "button", className: "bs-link", text: "Remove override" });
    remove.setAttribute("aria-label", `Remove the override of ${key}`);
    remove.addEventListener("click", () => {
      box.remove();
      fields.overrides.delete(key);
      updateEmpty();
    });
    box.append(el("legend", { text: name ? `${key} · ${name}` : key }),
               el("div", { className: "bs-override-head" },
                  el("span", { className: "bs-hint", text: "Used for this project instead of the general mapping." }),
                  remove),
               mappingGrid(`projects.${key}`, mapping, `Project ${key}`));
    fields.overrides.set(key, box);
    document.getElementById("bs-fields-projects").append(box);
    updateEmpty();
    return box;
  }

  function updateEmpty() {
    document.getElementById("bs-fields-no-projects").hidden = fields.overrides.size > 0;
  }

  function addOverride(form) {
    const input = document.getElementById("bs-add-project");
    const key = input.value.trim().toUpperCase();
    clearInvalid(form);
    if (!key) {
      say(form, "Type the key of the project that needs its own mapping.", false);
      input.focus();
      return;
    }
    if (fields.projects.size < MAX_SITE_PROJECTS && !fields.projects.has(key)) {
      // The list is the whole site: a key not in it is a typo (a longer list is checked on save).
      say(form, `This Jira site has no project with key ${key}.`, false);
      input.classList.add("bs-invalid");
      input.focus();
      return;
    }
    if (fields.overrides.has(key)) {
      say(form, `${key} has its own mapping already.`, false);
      fields.overrides.get(key).querySelector("select").focus();
      return;
    }
    // A new override starts as a copy of the general mapping; the site checks the key on save.
    const box = renderOverride(key, readGrid(document.getElementById("bs-fields-general")));
    input.value = "";
    say(form, `Override for ${key} added: adjust it, then save.`, true);
    box.querySelector("select").focus();
  }

  function renderFields(form, body) {
    fields.candidates = body.fields || [];
    fields.projects = new Map((body.siteProjects || []).map((p) => [p.key, p.name]));
    const datalist = document.getElementById("bs-site-projects");
    datalist.replaceChildren(...(body.siteProjects || []).map((p) => el("option", { value: p.key, text: p.name })));
    document.getElementById("bs-fields-general").replaceChildren(
      el("h3", { text: "General (every project without its own mapping)" }),
      mappingGrid("general", body.general, "General mapping"));
    document.getElementById("bs-fields-projects").replaceChildren();
    fields.overrides.clear();
    Object.entries(body.projects || {}).forEach(([key, mapping]) => renderOverride(key, mapping));
    updateEmpty();
  }

  async function setUpFields() {
    const form = document.getElementById("bs-fields-form");
    const loading = form.querySelector(".bs-loading");
    try {
      renderFields(form, await BoxSync.api("/api/mappings/fields"));
      loading.remove();
      form.querySelector("button[type=submit]").disabled = false;
    } catch (error) {
      loading.textContent = "Could not load the field mapping: " + error.message;
      loading.classList.add("bs-error");
      return;
    }
    document.getElementById("bs-add-project-button").addEventListener("click", () => addOverride(form));
    document.getElementById("bs-add-project").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        addOverride(form);
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const projects = {};
      fields.overrides.forEach((box, key) => { projects[key] = readGrid(box); });
      const body = { general: readGrid(document.getElementById("bs-fields-general")), projects };
      saving(form, async () => {
        await BoxSync.api("/api/mappings/fields", {
          method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        say(form, "Field mapping saved. Boxes re-read their issues at their next sync.", true);
      });
    });
  }

  // -- dependency mapping -----------------------------------------------------------------------

  const deps = { linkTypes: [] };

  // Not reversed: the issue on the link's outward side ("A blocks B": A) is the predecessor.
  function directionOptions(select, linkType, reversed) {
    if (!linkType) {
      select.replaceChildren(option("false", "—", true));
      select.disabled = true;
      return;
    }
    select.replaceChildren(
      option("false", `A ${linkType.outward} B: A comes first`, !reversed),
      option("true", `A ${linkType.inward} B: A comes first`, reversed));
    select.disabled = false;
  }

  // Each link type serves one dependency type: the others' choices are greyed out.
  function refreshChoices(tbody) {
    const chosen = new Map();
    tbody.querySelectorAll("select[data-role=link]").forEach((s) => { if (s.value) chosen.set(s.value, s.dataset.type); });
    tbody.querySelectorAll("select[data-role=link]").forEach((select) => {
      Array.from(select.options).forEach((opt) => {
        if (!opt.value) return;
        const lt = deps.linkTypes.find((l) => l.id === opt.value);
        const usedBy = chosen.get(opt.value);
        opt.disabled = !!(lt && lt.builderOf) || (usedBy !== undefined && usedBy !== select.dataset.type);
      });
    });
  }

  function linkLabel(lt) {
    if (lt.builderOf) return `${lt.name} (structure builder of the Box "${lt.builderOf}")`;
    return `${lt.name} (${lt.outward} / ${lt.inward})`;
  }

  function renderDeps(form, mapped) {
    const tbody = form.querySelector("tbody");
    const byType = new Map(mapped.map((d) => [d.type, d]));
    tbody.replaceChildren();
    DEPENDENCY_TYPES.forEach(([type, label], index) => {
      const current = byType.get(type);
      const link = el("select", { id: `bs-dep-${type}`, dataset: { role: "link", type, label } });
      link.setAttribute("aria-label", `Jira link type for ${label}`);
      link.append(option("", "Not mapped", !current));
      deps.linkTypes.forEach((lt) => link.append(option(lt.id, linkLabel(lt), current && current.linkTypeId === lt.id)));
      const direction = el("select", { dataset: { role: "direction", type, label: `${label}, direction` } });
      direction.setAttribute("aria-label", `Which issue comes first for ${label}`);
      const linkType = () => deps.linkTypes.find((lt) => lt.id === link.value);
      directionOptions(direction, current ? linkType() : null, current ? current.reversed : false);
      link.addEventListener("change", () => {
        directionOptions(direction, linkType(), direction.value === "true");
        refreshChoices(tbody);
      });
      tbody.append(el("tr", {}, el("th", { scope: "row" }, el("label", { htmlFor: link.id, text: label })),
                      el("td", {}, link), el("td", {}, direction)));
    });
    refreshChoices(tbody);
  }

  // The API names a fault by its place in the saved list ("[1].linkTypeId"): keep data-path in step.
  function collectDeps(tbody) {
    const out = [];
    tbody.querySelectorAll("tr").forEach((row) => {
      const link = row.querySelector("select[data-role=link]");
      const direction = row.querySelector("select[data-role=direction]");
      delete link.dataset.path;
      if (!link.value) return;
      link.dataset.path = `[${out.length}].linkTypeId`;
      direction.dataset.path = `[${out.length}].reversed`;
      out.push({ type: link.dataset.type, linkTypeId: link.value, reversed: direction.value === "true" });
    });
    return out;
  }

  async function setUpDeps() {
    const form = document.getElementById("bs-deps-form");
    const loading = form.querySelector(".bs-loading");
    try {
      const [mapped, linkTypes] = await Promise.all([
        BoxSync.api("/api/mappings/dependencies"), BoxSync.api("/api/mappings/link-types")]);
      deps.linkTypes = linkTypes;
      renderDeps(form, mapped);
      loading.remove();
      form.querySelector("table").hidden = false;
      form.querySelector("button[type=submit]").disabled = false;
    } catch (error) {
      loading.textContent = "Could not load the dependency mapping: " + error.message;
      loading.classList.add("bs-error");
      return;
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = collectDeps(form.querySelector("tbody"));
      saving(form, async () => {
        await BoxSync.api("/api/mappings/dependencies", {
          method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        say(form, body.length ? "Dependency mapping saved. Boxes rebuild their dependencies at their next sync."
                              : "Dependency mapping saved: no link makes a dependency now.", true);
      });
    });
  }

  function start() {
    if (!window.BoxSync || !document.getElementById("bs-fields-form")) return;
    setUpFields();
    setUpDeps();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
