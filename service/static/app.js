// outfit-compat web page: plain JS over the /v1 API (no build step, no external assets).
"use strict";

const $ = (sel) => document.querySelector(sel);
const outfit = []; // {kind: "item", id, item} | {kind: "upload", file, url}
let lastWeakest = null;
let lastQuery = null; // re-runs the last complementary request (after the filters change)

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || `${response.status} ${response.statusText}`;
    showError(message);
    throw new Error(message);
  }
  return body;
}

// The "vary the results" switch: MMR diversity for complements and whole outfits (0 = nearest first);
// on, the API's default (chosen on Mango, docs/SERVICE.md).
const VARIED = 0.7;
function diversity() { return $("#diversity-switch").checked ? VARIED : 0; }

function card(item, { score = null, pair = null, note = null, action = null, actionLabel = "Add",
  imageUrl = null } = {}) {
  const div = document.createElement("div");
  div.className = "card";
  div.dataset.id = item.id || "";
  const img = document.createElement("img");
  img.src = imageUrl || item.image_url || "";
  img.alt = item.title || item.id;
  img.loading = "lazy";
  div.appendChild(img);
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = item.title || item.id;
  title.title = `${item.id} · ${item.category || ""}`;
  div.appendChild(title);
  if (item.price !== null && item.price !== undefined) {
    const p = document.createElement("span");
    p.className = "muted price";
    p.textContent = item.price.toFixed(2);
    div.appendChild(p);
  }
  if (pair !== null) {
    // The calibrated score a person can read; the raw cosine (used for ranking) stays beside it.
    const p = document.createElement("span");
    p.className = "pair";
    p.textContent = `match ${Math.round(pair * 100)}%`;
    div.appendChild(p);
  }
  if (score !== null) {
    const s = document.createElement("span");
    s.className = "muted score";
    s.textContent = `cosine ${score.toFixed(3)}`;
    div.appendChild(s);
  }
  if (note !== null) {
    const n = document.createElement("span");
    n.className = "muted note";
    n.textContent = note;
    div.appendChild(n);
  }
  if (action) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "add-btn";
    b.textContent = actionLabel;
    b.addEventListener("click", action);
    div.appendChild(b);
  }
  return div;
}

function addItem(item) {
  if (outfit.some((m) => m.kind === "item" && m.id === item.id)) return;
  if (outfit.length >= 20) { showError("an outfit holds at most 20 items"); return; }
  outfit.push({ kind: "item", id: item.id, item });
  renderOutfit();
  rescore();
}

function refOf(member, n) { return member.kind === "item" ? member.id : `upload:${n}`; }

function renderOutfit() {
  const box = $("#outfit");
  box.replaceChildren();
  let upload = 0;
  outfit.forEach((m, i) => {
    const ref = m.kind === "item" ? m.id : `upload:${upload++}`;
    const item = m.kind === "item" ? m.item : { id: ref, title: "your photo", category: "" };
    const c = card(item, {
      imageUrl: m.kind === "upload" ? m.url : null,
      actionLabel: "Remove",
      action: () => { outfit.splice(i, 1); renderOutfit(); rescore(); },
    });
    c.dataset.ref = ref;
    if (ref === lastWeakest) c.classList.add("weakest");
    box.appendChild(c);
  });
}

async function rescore() {
  lastWeakest = null;
  if (outfit.length < 2) {
    $("#score").textContent = "Add 2 or more items to score the outfit.";
    $("#weakest").textContent = "";
    $("#score-bar").style.width = "0";
    renderOutfit();
    return;
  }
  const ids = outfit.filter((m) => m.kind === "item").map((m) => m.id);
  const uploads = outfit.filter((m) => m.kind === "upload");
  let result;
  if (uploads.length === 0) {
    result = await api("/v1/compatibility", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ item_ids: ids }),
    });
  } else {
    const form = new FormData();
    ids.forEach((id) => form.append("item_ids", id));
    uploads.forEach((m) => form.append("images", m.file));
    result = await api("/v1/compatibility", { method: "POST", body: form });
  }
  const pct = Math.round(result.score * 100);
  $("#score-bar").style.width = `${pct}%`;
  $("#score").textContent =
    `Compatibility ${result.score.toFixed(2)} · mean distance ${result.mean_distance.toFixed(3)}` +
    (result.calibrated ? " (calibrated)" : " (uncalibrated)");
  if (result.weakest) {
    lastWeakest = result.weakest.ref;
    const member = outfit.find((m) => m.kind === "item" && m.id === lastWeakest);
    const name = member ? `${member.item.title} (${member.id})` : "your photo";
    $("#weakest").textContent =
      `Weakest item: ${name} · the outfit scores ${result.weakest.score_without.toFixed(2)} without it`;
  } else {
    $("#weakest").textContent = "";
  }
  renderOutfit();
}

function renderResults(resp) {
  const q = resp.query;
  const how = q.category_source === "head" ? "by the category head"
    : `from its ${q.inferred_from.length} nearest catalog items`;
  const confidence = q.category_confidence !== null && q.category_confidence !== undefined
    ? `, confidence ${Math.round(q.category_confidence * 100)}%` : "";
  $("#query-info").textContent = q.category_inferred
    ? `Your photo looks like ${q.categories[0]} (inferred ${how}${confidence}).`
    : `Query: ${q.categories.join(", ")}.`;
  const box = $("#results");
  box.replaceChildren();
  for (const group of resp.groups) {
    const section = document.createElement("div");
    section.className = "group";
    section.dataset.category = group.category;
    const h = document.createElement("h3");
    h.textContent = group.category;
    section.appendChild(h);
    const grid = document.createElement("div");
    grid.className = "grid";
    for (const item of group.items) {
      grid.appendChild(card(item, { score: item.score, pair: item.compatibility, action: () => addItem(item) }));
    }
    section.appendChild(grid);
    box.appendChild(section);
  }
  if (!resp.groups.length) box.textContent = "No complementary items found.";
}

// Filter controls, built from GET /v1/filters: price range, a checkbox per boolean attribute ("in stock
// only"), a multi-select per string attribute, a comma-separated list per number attribute.
function buildFilters(info) {
  const attrs = Object.entries(info.attributes);
  if (!info.price && !attrs.length) return;
  if (info.price) {
    $("#filter-price-min").placeholder = String(Math.floor(info.price.min));
    $("#filter-price-max").placeholder = String(Math.ceil(info.price.max));
  }
  const box = $("#filter-attributes");
  for (const [name, a] of attrs) {
    const label = document.createElement("label");
    const nice = name.replace(/_/g, " ");
    let input;
    if (a.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      label.classList.add("check");
      label.append(input, ` ${nice} only`);
    } else if (a.type === "string") {
      input = document.createElement("select");
      input.multiple = true;
      input.size = Math.min(4, Object.keys(a.values).length);
      for (const [value, count] of Object.entries(a.values)) {
        const o = document.createElement("option");
        o.value = value;
        o.textContent = `${value} (${count})`;
        input.appendChild(o);
      }
      label.append(nice, input);
    } else {
      input = document.createElement("input");
      input.placeholder = a.min === null ? "e.g. 1, 2" : `${a.min}–${a.max}, e.g. ${a.min}, ${a.max}`;
      label.append(`${nice} (any of)`, input);
    }
    input.id = `filter-attr-${name}`;
    input.dataset.attr = name;
    input.dataset.kind = a.type;
    box.appendChild(label);
  }
  $("#filters").hidden = false;
}

// The filters as the API takes them, or null when none is set; throws on an unreadable number.
function currentFilters() {
  const f = {};
  for (const [key, id] of [["price_min", "#filter-price-min"], ["price_max", "#filter-price-max"]]) {
    const v = $(id).value.trim();
    if (v !== "") f[key] = Number(v);
  }
  for (const input of document.querySelectorAll("#filter-attributes [data-attr]")) {
    const name = input.dataset.attr;
    if (input.dataset.kind === "boolean") {
      if (input.checked) f[name] = true;
    } else if (input.dataset.kind === "string") {
      const chosen = Array.from(input.selectedOptions, (o) => o.value);
      if (chosen.length) f[name] = chosen;
    } else {
      const parts = input.value.split(",").map((p) => p.trim()).filter((p) => p !== "");
      if (parts.some((p) => Number.isNaN(Number(p)))) throw new Error(`${name}: numbers separated by commas`);
      if (parts.length) f[name] = parts.map(Number);
    }
  }
  const n = Object.keys(f).length;
  $("#filter-summary").textContent = n ? `${n} filter${n > 1 ? "s" : ""} active` : "";
  return n ? f : null;
}

// POST /v1/complementary with the current filters (JSON body or multipart form), remembered for re-runs.
async function complementary(body, form = null) {
  lastQuery = () => complementary(body, form);
  let filters;
  try { filters = currentFilters(); } catch (e) { showError(e.message); return; }
  let options;
  if (form) {
    form.delete("filters");
    if (filters) form.append("filters", JSON.stringify(filters));
    form.set("diversity", String(diversity()));
    options = { method: "POST", body: form };
  } else {
    const json = { ...body, diversity: diversity(), ...(filters ? { filters } : {}) };
    options = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(json) };
  }
  renderResults(await api("/v1/complementary", options));
  $("#results").dataset.filters = JSON.stringify(filters || {}); // what the shown results were filtered by
}

function renderLooks(resp, shownDiversity) {
  const box = $("#looks");
  box.replaceChildren();
  box.dataset.diversity = String(shownDiversity);
  const seeds = resp.seeds.map((s) => (s.category_source === "catalog" || s.category_source === "given"
    ? s.category : `${s.category} (${Math.round((s.category_confidence || 0) * 100)}%)`));
  $("#look-info").textContent =
    `Seeds: ${seeds.join(", ")} · adding ${resp.targets.join(", ")} (${resp.targets_source})` +
    ` · ${resp.search.evaluated} partial outfits scored` + (resp.calibrated ? "" : " · uncalibrated");
  resp.outfits.forEach((o) => {
    const look = document.createElement("div");
    look.className = "look";
    look.dataset.rank = String(o.rank);
    const h = document.createElement("h3");
    h.className = "look-score";
    h.textContent = `Outfit ${o.rank} · compatibility ${o.score.toFixed(2)}`;
    look.appendChild(h);
    const meter = document.createElement("div");
    meter.className = "meter";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${Math.round(o.score * 100)}%`;
    meter.appendChild(bar);
    look.appendChild(meter);
    const grid = document.createElement("div");
    grid.className = "grid";
    let upload = 0;
    for (const e of o.items) {
      const member = e.kind === "upload" ? outfit.filter((m) => m.kind === "upload")[upload++] : null;
      const item = e.item || { id: e.ref, title: "your photo", category: e.category };
      const note = e.contribution === null ? null
        : `${e.contribution >= 0 ? "+" : ""}${e.contribution.toFixed(3)} to the outfit`;
      const c = card(item, {
        pair: e.role === "added" ? e.compatibility : null, note, imageUrl: member ? member.url : null,
        action: e.role === "added" ? () => addItem(e.item) : null,
      });
      c.dataset.ref = e.ref;
      if (e.role === "seed") c.classList.add("seed");
      grid.appendChild(c);
    }
    look.appendChild(grid);
    box.appendChild(look);
  });
}

// After the filters or the diversity switch change: ask again for what is shown.
function rerun() {
  if (lastQuery) lastQuery(); else currentFilters();
  if ($("#looks").children.length) completeLook();
}

async function completeLook() {
  if (!outfit.length) { showError("add an item or a photo to the outfit first"); return; }
  const ids = outfit.filter((m) => m.kind === "item").map((m) => m.id);
  const uploads = outfit.filter((m) => m.kind === "upload");
  const n = Number($("#complete-n").value);
  const d = diversity();
  let filters;
  try { filters = currentFilters(); } catch (e) { showError(e.message); return; }
  let resp;
  if (!uploads.length) {
    resp = await api("/v1/outfits/complete", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ item_ids: ids, n_outfits: n, diversity: d, ...(filters ? { filters } : {}) }),
    });
  } else {
    const form = new FormData();
    ids.forEach((id) => form.append("item_ids", id));
    uploads.forEach((m) => form.append("images", m.file));
    form.append("n_outfits", String(n));
    form.append("diversity", String(d));
    if (filters) form.append("filters", JSON.stringify(filters));
    resp = await api("/v1/outfits/complete", { method: "POST", body: form });
  }
  renderLooks(resp, d);
}

function photoForm() {
  const file = $("#photo-input").files[0];
  if (!file) { showError("choose a photo first"); return null; }
  const form = new FormData();
  form.append("image", file);
  const cat = $("#photo-category").value;
  if (cat) form.append("category", cat);
  return form;
}

async function init() {
  try {
    const ready = await api("/readyz");
    $("#status").textContent = `${ready.items} items · model ${ready.model_version} · index ${ready.index_version}`;
  } catch (e) {
    $("#status").textContent = "not ready";
  }
  buildFilters(await api("/v1/filters"));
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    rerun();
  });
  $("#filter-clear").addEventListener("click", () => {
    $("#filters").reset();
    rerun();
  });
  const cats = (await api("/v1/categories")).categories;
  for (const sel of [$("#photo-category"), $("#browse-category")]) {
    for (const c of cats) {
      const o = document.createElement("option");
      o.value = c.name;
      o.textContent = `${c.name} (${c.count})`;
      sel.appendChild(o);
    }
  }
  $("#photo-input").addEventListener("change", () => {
    const file = $("#photo-input").files[0];
    if (!file) return;
    $("#photo-preview").src = URL.createObjectURL(file);
    $("#photo-preview").hidden = false;
  });
  $("#photo-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = photoForm();
    if (form) await complementary(null, form);
  });
  $("#photo-add-btn").addEventListener("click", () => {
    const file = $("#photo-input").files[0];
    if (!file) { showError("choose a photo first"); return; }
    outfit.push({ kind: "upload", file, url: URL.createObjectURL(file) });
    renderOutfit();
    rescore();
  });
  $("#browse-btn").addEventListener("click", async () => {
    const cat = $("#browse-category").value;
    const seed = Math.floor(Math.random() * 1e6);
    const list = await api(`/v1/items?category=${encodeURIComponent(cat)}&limit=12&seed=${seed}`);
    const grid = $("#browse-grid");
    grid.replaceChildren(...list.items.map((item) => card(item, { action: () => addItem(item) })));
  });
  $("#item-add-btn").addEventListener("click", async () => {
    const id = $("#item-id").value.trim();
    if (id) addItem(await api(`/v1/items/${encodeURIComponent(id)}`));
  });
  $("#outfit-btn").addEventListener("click", async () => {
    const ids = outfit.filter((m) => m.kind === "item").map((m) => m.id);
    if (ids.length) {
      await complementary({ item_ids: ids, k: 24, per_category: 4 });
    } else if (outfit.length) {
      const form = new FormData();
      form.append("image", outfit[0].file);
      await complementary(null, form);
    } else {
      showError("the outfit is empty");
    }
  });
  $("#clear-btn").addEventListener("click", () => { outfit.length = 0; renderOutfit(); rescore(); });
  $("#complete-btn").addEventListener("click", completeLook);
  $("#diversity-switch").addEventListener("change", rerun);
}

init();
