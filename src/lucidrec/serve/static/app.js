"use strict";
// The lucidrec explorer: plain JavaScript over the JSON API of the same server (no build step).

const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, typed: [], suggestions: new Map(), searchTimer: null, read: null, shown: 0 };
const SHOWN_COLUMNS = /^(ndcg|recall|hr)@(10|20)$|^mrr$/;
const SHOWN_ATTRIBUTES = 10;
// What the profile's bars are, by the explainer that answered (the API's "method").
const PROFILE_TITLES = {
  "ger-attribute-contributions": "User profile (attribute weights)",
  "lane-preference-attention": "Preferences (attention weight the score used)",
};

function apiKey() { return sessionStorage.getItem("lucidrec-api-key") || ""; }

async function api(path, options = {}) {
  const headers = { "Accept": "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) };
  if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) { $("key-box").hidden = false; }
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
    const error = new Error(`${response.status}: ${detail}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function fmt(value, digits = 4) { return Number(value).toFixed(digits); }

async function loadRuns() {
  state.runs = await api("/runs");
  const select = $("run");
  select.replaceChildren(...state.runs.map((r) => el("option", { value: r.name }, r.name)));
  if (state.runs.length) await selectRun(state.runs[0].name);
}

async function selectRun(name) {
  state.run = state.runs.find((r) => r.name === name);
  const r = state.run;
  $("run-info").textContent = `${r.dataset} · ${r.model} · ${r.method} · ${r.n_users} users · ${r.n_items} items` +
    (r.explainable ? " · explained" : " · no explainer") + (r.interpreter ? ` · read by RecInterpreter (${r.interpreter.task})` : "");
  clearResults();
  const [detail, users] = await Promise.all([api(`/runs/${enc(name)}`), api(`/runs/${enc(name)}/users?limit=1000`)]);
  renderMetrics(detail.groups);
  $("user-list").replaceChildren(...users.users.map((u) => el("option", { value: u.user_id }, `${u.history_length} items`)));
  if (!$("user").value && users.users.length) $("user").value = users.users[0].user_id;
  setStatus(`${r.name} ready`);
}

function enc(text) { return encodeURIComponent(text); }

function renderMetrics(groups) {
  const names = Object.keys(groups);
  const metricNames = [...new Set(names.flatMap((g) => Object.keys(groups[g])))].filter((m) => SHOWN_COLUMNS.test(m)).sort();
  const head = el("tr", {}, el("th", {}, "group"), el("th", {}, "users"), ...metricNames.map((m) => el("th", {}, m)));
  const order = (g) => (g === "all" ? "" : g);
  const rows = names.sort((a, b) => order(a).localeCompare(order(b))).map((g) => el("tr", { "data-group": g },
    el("td", {}, g), el("td", {}, groups[g].n_users === undefined ? "" : String(groups[g].n_users)),
    ...metricNames.map((m) => el("td", {}, groups[g][m] === undefined ? "–" : fmt(groups[g][m])))));
  $("metrics").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function clearResults() {
  for (const id of ["history", "recommendations", "profile", "notes", "reading-output"]) $(id).replaceChildren();
  $("explanation-text").textContent = "";
  $("reading-about").textContent = "";
  $("history-count").textContent = "";
  $("reading").hidden = true;
  state.read = null;
}

function k() { return Math.max(1, parseInt($("k").value || "10", 10)); }

async function showUser() {
  const user = $("user").value.trim();
  if (!user) { setStatus("type or pick a user id", true); return; }
  const base = `/runs/${enc(state.run.name)}/users/${enc(user)}`;
  await show(async () => {
    const [recs, history] = await Promise.all([api(`${base}/recommendations?k=${k()}`), api(base)]);
    const explained = `${base}/explanations?k=${k()}`;
    return { recs, history: history.history, explain: () => api(explained), read: () => api(`${explained}&reading=true`),
             label: `user ${user}` };
  });
}

async function showHistory() {
  if (!state.typed.length) { setStatus("add at least one item to the history", true); return; }
  const asUser = $("as-user").value.trim();
  const body = JSON.stringify({ item_ids: state.typed.map((i) => i.item_id), k: k(), ...(asUser ? { user_id: asUser } : {}) });
  const base = `/runs/${enc(state.run.name)}`;
  await show(async () => {
    const recs = await api(`${base}/recommend`, { method: "POST", body });
    return { recs, history: recs.history, explain: () => api(`${base}/explain`, { method: "POST", body }),
             read: () => api(`${base}/explain?reading=true`, { method: "POST", body }),
             label: `a history of ${state.typed.length} items${asUser ? ` as user ${asUser}` : ""}` };
  });
}

async function show(fetchAll) {
  clearResults();
  state.shown += 1;
  setStatus("scoring…");
  try {
    const { recs, history, explain, read, label } = await fetchAll();
    renderHistory(history);
    renderRecommendations(recs.items);
    setStatus(`top ${recs.items.length} for ${label}`);
    if (state.run.interpreter) { state.read = read; $("reading").hidden = false; }  // read on request: it is slow
    if (state.run.explainable) renderExplanation(await explain());
    else $("explanation-text").textContent = `This run (${state.run.method}) has no explainer: scores only.`;
  } catch (error) {
    setStatus(error.message, true);
  }
}

function renderHistory(items) {
  $("history-count").textContent = `(${items.length} items, oldest first)`;
  $("history").replaceChildren(...items.map((i) => el("li", { "data-item": i.item_id }, i.title)));
}

function renderRecommendations(items) {
  $("recommendations").replaceChildren(...items.map((i) => el("li", { "data-item": i.item_id, "data-testid": "recommendation" },
    el("div", { class: "rec-head" }, el("span", { class: "rank" }, `${i.rank}.`),
       el("span", { class: "title", "data-testid": "rec-title" }, i.title), el("span", { class: "score" }, `score ${fmt(i.score, 3)}`)))));
}

function bars(weights, scale) {
  // Weights that are never negative (attention weights) fill the track from its left edge.
  const signed = weights.some((w) => w.value < 0);
  const grid = el("div", { class: "bars" + (signed ? "" : " unsigned"), "data-testid": "bars" });
  const full = signed ? 50 : 100;
  for (const w of weights) {
    const width = scale > 0 ? Math.min(full, (full * Math.abs(w.value)) / scale) : 0;
    const bar = el("div", { class: "bar " + (w.value >= 0 ? "pos" : "neg") });
    bar.style.width = `${width}%`;
    grid.append(el("span", {}, w.name), el("div", { class: "bar-track", title: `${w.name}: ${w.value}` }, bar),
                el("span", { class: "bar-value" }, (w.value >= 0 ? "+" : "") + fmt(w.value, 3)));
  }
  return grid;
}

function renderExplanation(explanation) {
  $("explanation-text").textContent = explanation.text;
  $("notes").replaceChildren(...explanation.notes.map((note) => el("li", {}, note)));
  if (explanation.profile.length) {
    // Attention weights are shares of 1 and drawn as such; attribute weights relative to the largest.
    const profileScale = explanation.method === "lane-preference-attention" ? 1
      : Math.max(...explanation.profile.map((w) => Math.abs(w.value)), 0);
    $("profile").replaceChildren(el("h3", { class: "muted" }, PROFILE_TITLES[explanation.method] || "User profile"),
                                 bars(explanation.profile.slice(0, SHOWN_ATTRIBUTES), profileScale));
  }
  const scale = Math.max(...explanation.items.flatMap((i) => i.contributions.map((w) => Math.abs(w.value))), 0);
  const byItem = new Map(explanation.items.map((i) => [i.item_id, i]));
  for (const li of $("recommendations").children) {
    const item = byItem.get(li.dataset.item);
    if (!item) continue;
    const strongest = [...item.contributions].sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, SHOWN_ATTRIBUTES);
    if (item.text) li.append(el("p", { class: "why", "data-testid": "why" }, item.text));
    if (strongest.length) li.append(bars(strongest, scale));
  }
}

// -- RecInterpreter: the language model's reading of the state, fetched when asked --------------
async function readState() {
  if (!state.read) return;
  const shown = state.shown;
  $("read-state").disabled = true;
  setStatus("the language model is reading the state…");
  try {
    const explanation = await state.read();
    if (shown !== state.shown) return;  // another user or history is shown by now
    renderReading(explanation.reading);
    setStatus("state read");
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("read-state").disabled = false;
  }
}

function renderReading(reading) {
  const row = (term, text, testid) => [el("dt", {}, term), el("dd", testid ? { "data-testid": testid } : {}, text || "(no answer)")];
  const top = reading.recommender_top.length ? reading.recommender_top[0].title : "–";
  $("reading-output").replaceChildren(
    ...row("The current state reads as", reading.current_state, "reading-current"),
    ...row(reading.task === "residual" ? "Its last item is" : "Its last items are",
           reading.task === "residual" ? reading.last_item.title : reading.recent_items.map((i) => i.title).join("; ")),
    ...row("The predicted next item reads as", reading.predicted_next_item, "reading-next"),
    ...row("The recommender's first item is", top));
  const heldout = reading.heldout === null ? "a history without a user"
    : reading.heldout ? "a user held out from the adapter's training" : "a user whose history trained the adapter";
  $("reading-about").textContent = `${reading.lm} · ${reading.task} · ${heldout} · prompt: ${reading.prompt}`;
}

// -- typed history with title autocomplete ----------------------------------------------------
function suggest() {
  clearTimeout(state.searchTimer);
  const query = $("title-query").value.trim();
  if (query.length < 2) return;
  state.searchTimer = setTimeout(async () => {
    try {
      const found = await api(`/runs/${enc(state.run.name)}/items?query=${enc(query)}&limit=10`);
      for (const hit of found.items) state.suggestions.set(hit.title, hit);
      $("title-list").replaceChildren(...found.items.map((hit) => el("option", { value: hit.title })));
    } catch (error) { setStatus(error.message, true); }
  }, 150);
}

async function addTyped() {
  const title = $("title-query").value.trim();
  if (!title) return;
  let hit = state.suggestions.get(title);
  if (!hit) {
    const found = await api(`/runs/${enc(state.run.name)}/items?query=${enc(title)}&limit=10`).catch(() => ({ items: [] }));
    hit = found.items.find((i) => i.title === title) || found.items.find((i) => i.title.toLowerCase() === title.toLowerCase());
  }
  if (!hit) { setStatus(`no item titled "${title}" in this run`, true); return; }
  state.typed.push({ item_id: hit.item_id, title: hit.title });
  $("title-query").value = "";
  renderTyped();
  setStatus(`added ${hit.title}`);
}

function renderTyped() {
  $("typed-history").replaceChildren(...state.typed.map((item, n) => {
    const remove = el("button", { title: "remove" }, "×");
    remove.addEventListener("click", () => { state.typed.splice(n, 1); renderTyped(); });
    return el("li", { "data-item": item.item_id }, item.title, remove);
  }));
}

function selectTab(tab) {
  for (const name of ["user", "history"]) {
    $(`tab-${name}`).classList.toggle("active", name === tab);
    $(`pane-${name}`).hidden = name !== tab;
  }
}

function init() {
  $("run").addEventListener("change", (e) => selectRun(e.target.value).catch((error) => setStatus(error.message, true)));
  $("tab-user").addEventListener("click", () => selectTab("user"));
  $("tab-history").addEventListener("click", () => selectTab("history"));
  $("show-user").addEventListener("click", showUser);
  $("user").addEventListener("keydown", (e) => { if (e.key === "Enter") showUser(); });
  $("title-query").addEventListener("input", suggest);
  $("title-query").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addTyped(); } });
  $("title-query").addEventListener("change", () => { if (state.suggestions.has($("title-query").value)) addTyped(); });
  $("show-history").addEventListener("click", showHistory);
  $("read-state").addEventListener("click", readState);
  $("clear-history").addEventListener("click", () => { state.typed = []; renderTyped(); });
  $("api-key").addEventListener("change", (e) => {
    sessionStorage.setItem("lucidrec-api-key", e.target.value);
    loadRuns().catch((error) => setStatus(error.message, true));
  });
  loadRuns().catch((error) => setStatus(error.message, true));
}

init();
