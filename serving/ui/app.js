// The manymodels dashboard: a static page over the router's JSON API (no build step, no CDN).
// The view lives in the URL hash (#q=<prefix>&sort=<key|skill|score|age>&p=<partition key>, or
// #health=<drift|error|naive|age|key> for the monitor) so a link reproduces it; a token, when the user enters one, lives in sessionStorage only and is
// sent as "Authorization: Bearer" on every API call, never in a URL.
"use strict";

const TOKEN_KEY = "manymodels.token";
const PAGE = 200; // partitions per API call (the API allows up to 1000)
const HORIZON = 8; // forecast periods drawn on the partition view

const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children; text goes in as text nodes, never as HTML. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

/** One JSON call to the router; a non-2xx answer becomes an ApiError with the API's detail. */
async function api(path, init = {}) {
  const headers = { Accept: "application/json", ...(init.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const response = await fetch(path, { ...init, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body && body.detail ? body.detail : response.statusText);
  return body;
}

/** A key as one path segment: canonical keys percent-encode their values already, so only what
 * could leave the segment ("/", "?", "#", "\\", spaces…) is encoded here. A crafted link (#p=k/rollback?)
 * must never turn the page's POST …/forecast into a call to another endpoint. */
function keyPath(key) {
  if (/^(?:\.|%2e)+$/i.test(key)) throw new ApiError(404, `no partition '${key}'`); // a dot-segment
  return key.replace(/[^A-Za-z0-9=,%._~!$&'()*+;:@-]/g, (c) => encodeURIComponent(c));
}

function state() {
  const params = new URLSearchParams(location.hash.slice(1));
  return {
    q: params.get("q") || "",
    sort: params.get("sort") || "key",
    p: params.get("p") || "",
    health: params.get("health") || "",
  };
}

function go(next) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state(), ...next })) {
    if (value && !(name === "sort" && value === "key")) params.set(name, value);
  }
  location.hash = params.toString();
}

function status(text, isError = false) {
  const node = $("#status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

function failed(error) {
  if (error.status === 401 && token()) {
    status("The router refused this token: enter another one above, or forget it.", true);
  } else if (error.status === 401) {
    status("This router needs a read token: enter it above (it is kept for this tab only).", true);
  } else {
    status(`Error: ${error.message}`, true);
  }
  document.body.dataset.state = "error";
}

// ------------------------------------------------------------------ formatting
const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toPrecision(digits));
const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);
const shortEstimator = (name) => (name || "").split(/[.:]/).pop();

function age(iso) {
  if (!iso) return "–";
  const days = (Date.now() - Date.parse(iso)) / 86400000;
  const minutes = Math.max(0, Math.round(days * 1440));
  const ago = minutes < 60 ? `${minutes} min ago` : days < 1 ? `${Math.round(days * 24)} h ago` : `${Math.round(days)} d ago`;
  return `${iso.slice(0, 16).replace("T", " ")} (${ago})`;
}

/** "store=1, brand=dominick's/own label": the key's values as sent, not percent-encoded. */
function readable(p) {
  const pairs = Object.entries(p.key_values || {});
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : p.partition;
}

function skillCell(skill) {
  return el("td", { class: `num ${skill !== null && skill !== undefined && skill <= 0 ? "bad" : "good"}` }, pct(skill));
}

function badges(aliases) {
  return Object.entries(aliases || {}).map(([name, v]) => el("span", { class: "badge" }, `${name}: v${v}`));
}

// ------------------------------------------------------------------ partitions list
let listed = []; // the rows loaded so far for the current search
let nextAfter = null;

const SORTS = {
  key: null,
  skill: (p) => (p.production ? p.production.skill : null),
  score: (p) => (p.production ? p.production.score : null),
  age: (p) => (p.production ? Date.parse(p.production.created_at) : null),
};

function sorted(rows, sort) {
  const value = SORTS[sort];
  if (!value) return rows;
  // Ascending: worst skill / score first, oldest model first; partitions without one last.
  return [...rows].sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return x - y;
  });
}

/** Python's quote(text, safe=":"), the encoding of a canonical key's columns and values. */
function quote(text) {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%3A/g, ":");
}

/** A search as the canonical key text it must prefix: "store=1,brand=dominick's" as typed
 * becomes "store=1,brand=dominick%27s" (each column and value encoded as the registry does,
 * character by character, so a partial value still matches). Text with a "%" is taken as
 * already canonical (copied from a key). */
function canonicalPrefix(text) {
  if (text.includes("%")) return text;
  return text
    .split(",")
    .map((part) => {
      const at = part.indexOf("=");
      return at < 0 ? quote(part) : `${quote(part.slice(0, at))}=${quote(part.slice(at + 1))}`;
    })
    .join(",");
}

async function loadPage(q, after) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (q) params.set("prefix", canonicalPrefix(q));
  if (after) params.set("after", after);
  const page = await api(`/v1/partitions?${params}`);
  listed = listed.concat(page.partitions);
  nextAfter = page.next_after;
}

function drawList() {
  const { sort } = state();
  const body = $("#partitions tbody");
  body.replaceChildren(
    ...sorted(listed, sort).map((p) => {
      const v = p.production;
      return el(
        "tr",
        { "data-key": p.partition },
        el("td", {}, el("a", { href: "#", title: p.partition, onclick: (e) => { e.preventDefault(); go({ p: p.partition }); } }, readable(p))),
        el("td", { class: "num" }, v ? `v${v.version}` : "–"),
        el("td", {}, v ? shortEstimator(v.estimator) : "–"),
        skillCell(v ? v.skill : null),
        el("td", { class: "num" }, v ? fmt(v.score) : "–"),
        el("td", {}, v ? age(v.created_at) : "–"),
        el("td", {}, badges(p.aliases)),
      );
    }),
  );
  $("#more").hidden = !nextAfter;
  $("#list-note").textContent =
    `${listed.length} partition(s) loaded` +
    (nextAfter ? " — more match: sorting applies to the loaded rows only" : "") + ".";
}

async function renderList() {
  const { q, sort } = state();
  $("#q").value = q;
  $("#sort").value = sort;
  listed = [];
  nextAfter = null;
  await loadPage(q, null);
  drawList();
  const order = $("#sort").selectedOptions[0].textContent;
  status(`${q ? `Partitions whose key starts with “${q}”` : "All partitions"}, by ${order}.`);
  await renderJobs();
}

async function renderJobs() {
  const box = $("#jobs");
  try {
    const { jobs } = await api("/v1/jobs?limit=20");
    if (!jobs.length) {
      box.replaceChildren(el("p", { class: "hint" }, "No retrain job since this router started."));
      return;
    }
    box.replaceChildren(
      el("table", {},
        el("thead", {}, el("tr", {}, ["job", "partition", "status", "outcome", "version", "created", "error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, jobs.map((j) => el("tr", {},
          el("td", {}, el("code", {}, j.job_id)),
          el("td", {}, j.partition),
          el("td", {}, j.status),
          el("td", {}, j.decision ? j.decision.outcome : "–"),
          el("td", { class: "num" }, j.version ? `v${j.version}` : "–"),
          el("td", { class: "when" }, age(j.created_at)),
          el("td", { class: "bad" }, j.error || ""),
        ))),
      ),
    );
  } catch (error) {
    if (error.status !== 401 && error.status !== 403) throw error;
    box.replaceChildren(el("p", { class: "hint" }, "Retrain jobs are shown with the admin token."));
  }
}

// ------------------------------------------------------------------ health (GET /v1/monitor)
let healthRows = []; // the monitor's rows loaded so far, in the API's order (worst first)
let healthTotal = 0;

const days = (x) => (x === null || x === undefined ? "–" : `${Number(x).toFixed(1)} d`);

/** A ratio of errors (live over validation, live over naive): red from 1 up, as the monitor's
 * "degraded" trigger reads it; the API's order is kept, the page never sorts these rows. */
function ratioCell(x) {
  const known = x !== null && x !== undefined;
  return el("td", { class: `num${known && x >= 1 ? " bad" : ""}` }, known ? fmt(x) : "–");
}

async function loadHealth(sort, offset) {
  const params = new URLSearchParams({ sort, limit: String(PAGE), offset: String(offset) });
  const page = await api(`/v1/monitor?${params}`);
  healthRows = healthRows.concat(page.partitions);
  healthTotal = page.total;
}

function drawHealth() {
  $("#health tbody").replaceChildren(
    ...healthRows.map((h) => el("tr", { "data-key": h.key },
      el("td", {}, el("a", { href: "#", title: h.key, onclick: (e) => { e.preventDefault(); go({ p: h.key, health: "" }); } }, h.key)),
      el("td", { class: "num" }, `v${h.version}`),
      el("td", { class: "num drift" }, h.drift === null ? "–" : `${fmt(h.drift)} (${h.drift_feature})`),
      ratioCell(h.error_ratio),
      ratioCell(h.naive_ratio),
      el("td", { class: "num" }, h.live_error === null ? "–" : `${h.live_metric} ${fmt(h.live_error, 4)}`),
      el("td", { class: "num" }, h.live_rows),
      el("td", { class: "num" }, days(h.model_age_days)),
      el("td", { class: "num" }, days(h.data_age_days)),
      el("td", { class: "flags" }, h.flags.map((f) => el("span", { class: "badge flag" }, f))),
    )),
  );
  $("#health-more").hidden = healthRows.length >= healthTotal;
  $("#health-note").textContent = `${healthRows.length} of ${healthTotal} partition(s) in production, worst first (the router's order).`;
}

async function renderHealth(sort) {
  $("#health-sort").value = sort;
  healthRows = [];
  await loadHealth(sort, 0);
  drawHealth();
  status(`Partition health, worst first by ${$("#health-sort").selectedOptions[0].textContent}.`);
}

// ------------------------------------------------------------------ one partition
function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function explanation(ex) {
  const biggest = Math.max(1e-12, ...ex.terms.map((t) => Math.abs(t.value)));
  return el("div", {},
    el("p", {}, `v${ex.version} · ${ex.estimator} · ${ex.metric} ${fmt(ex.score, 4)} vs naive ${fmt(ex.naive_score, 4)} (skill ${pct(ex.skill)})`),
    table(["candidate", "params", "score", "error"], ex.candidates.map((c) => el("tr", {},
      el("td", {}, c.label || shortEstimator(c.estimator)),
      el("td", {}, el("code", {}, JSON.stringify(c.params || {}))),
      el("td", { class: "num" }, fmt(c.score, 4)),
      el("td", { class: "bad" }, c.error || ""),
    ))),
    el("p", { class: "hint" }, `${ex.kind}: ${ex.units}` + (ex.intercept.length ? ` · intercept ${ex.intercept.map((x) => fmt(x, 4)).join(", ")}` : "")),
    ex.terms.length
      ? table(["feature", "value", ""], ex.terms.map((t) => el("tr", {},
          el("td", {}, t.cls === null ? t.feature : `${t.feature} (${t.cls})`),
          el("td", { class: "num" }, fmt(t.value, 4)),
          el("td", {}, el("span", { class: `bar${t.value < 0 ? " neg" : ""}`, style: `width:${(120 * Math.abs(t.value)) / biggest}px` })),
        )))
      : null,
  );
}

/** An inline SVG line of the forecast's points (no chart library: the page works offline). */
function chart(points) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 560, h = 200, pad = 40;
  const ys = points.map((p) => Number(p.prediction));
  const lo = Math.min(...ys), hi = Math.max(...ys);
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
  const y = (v) => (hi === lo ? h / 2 : h - pad - ((v - lo) * (h - 2 * pad)) / (hi - lo));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  add("polyline", { points: ys.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#444ce7", "stroke-width": 2 });
  ys.forEach((v, i) => add("circle", { cx: x(i), cy: y(v), r: 3, fill: "#444ce7" }));
  add("text", { x: pad, y: 16, "font-size": 12 }, `max ${fmt(hi, 4)}`);
  add("text", { x: pad, y: h - 6, "font-size": 12 }, `${String(points[0].time).slice(0, 10)} … ${String(points[points.length - 1].time).slice(0, 10)} · min ${fmt(lo, 4)}`);
  return svg;
}

async function forecastBox(key) {
  try {
    const body = await api(`/v1/partitions/${keyPath(key)}/forecast`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ horizon: HORIZON }),
    });
    return el("div", { id: "forecast" }, chart(body.forecast),
      el("p", { class: "hint" }, `The next ${HORIZON} periods from production v${body.version}, exogenous features carried forward. Actuals are not drawn: the API has no endpoint for a partition's recorded history yet.`));
  } catch (error) {
    if (error.status === 401) throw error;
    return el("p", { class: "hint", id: "forecast" }, `No forecast: ${error.message}`);
  }
}

async function renderPartition(key) {
  const view = $("#partition-view");
  const detail = await api(`/v1/partitions/${keyPath(key)}`);
  const [ex, forecast] = await Promise.all([
    api(`/v1/partitions/${keyPath(key)}/explain`).catch((error) => error),
    forecastBox(key),
  ]);
  const production = detail.aliases.production;
  view.dataset.key = detail.partition;
  view.replaceChildren(
    el("p", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ p: "" }); } }, "← all partitions")),
    el("h2", { title: detail.partition }, readable(detail)),
    el("p", {}, "production ", el("strong", { id: "production-version" }, production ? `v${production}` : "none"),
      ` · router serves ${detail.serving.version ? `v${detail.serving.version}` : "–"} · `, badges(detail.aliases)),
    el("div", { class: "grid" },
      el("div", {},
        el("h2", {}, "Versions"),
        table(["version", "estimator", "score", "naive", "skill", "rows", "created", "aliases"],
          detail.versions.map((v) => el("tr", { "data-version": v.version },
            el("td", { class: "num" }, `v${v.version}`),
            el("td", {}, shortEstimator(v.estimator)),
            el("td", { class: "num" }, fmt(v.score, 4)),
            el("td", { class: "num" }, fmt(v.naive_score, 4)),
            skillCell(v.skill),
            el("td", { class: "num" }, v.n_rows),
            el("td", { class: "when" }, age(v.created_at)),
            el("td", {}, v.aliases.join(", ")),
          ))),
        el("h2", {}, "Alias history"),
        table(["at", "alias", "move", "reason", "run"],
          detail.alias_history.slice().reverse().map((m) => el("tr", { class: "move" },
            el("td", { class: "when" }, age(m.at)),
            el("td", {}, m.alias),
            el("td", {}, `${m.from_version ? `v${m.from_version}` : "–"} → ${m.to_version ? `v${m.to_version}` : "–"}`),
            el("td", { class: "reason" }, m.reason),
            el("td", {}, m.run_id ? el("code", {}, m.run_id) : "–"),
          ))),
        el("h2", {}, "Runs that made these versions"),
        table(["run", "kind", "status", "spec", "data", "started", "ended"],
          detail.runs.map((r) => el("tr", {},
            el("td", {}, el("code", {}, r.run_id)),
            el("td", {}, r.kind),
            el("td", { class: r.status === "completed" ? "" : "bad" }, r.status),
            el("td", {}, r.spec_name),
            el("td", { class: "long", title: r.data_source }, r.data_source.length > 32 ? `${r.data_source.slice(0, 31)}…` : r.data_source),
            el("td", { class: "when" }, age(r.started_at)),
            el("td", { class: "when" }, r.ended_at ? age(r.ended_at) : "–"),
          ))),
      ),
      el("div", {},
        el("h2", {}, "Why this model"),
        ex instanceof Error ? el("p", { class: "hint" }, `No explanation: ${ex.message}`) : explanation(ex),
        el("h2", {}, "Forecast"),
        forecast,
      ),
    ),
  );
  status(`Partition ${detail.partition}.`);
}

// ------------------------------------------------------------------ wiring
async function render() {
  document.body.dataset.state = "loading";
  const { p, health } = state();
  $("#list-view").hidden = Boolean(p || health);
  $("#health-view").hidden = Boolean(p || !health);
  $("#partition-view").hidden = !p;
  $("#token-state").textContent = token() ? "token set for this tab" : "no token";
  try {
    if (p) await renderPartition(p);
    else if (health) await renderHealth(health);
    else await renderList();
    document.body.dataset.state = "ready";
  } catch (error) {
    failed(error);
  }
}

$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  go({ q: $("#q").value.trim(), sort: $("#sort").value, p: "" });
});
$("#sort").addEventListener("change", () => go({ sort: $("#sort").value }));
$("#health-sort").addEventListener("change", () => go({ health: $("#health-sort").value }));
$("#health-more").addEventListener("click", async () => {
  try {
    await loadHealth(state().health, healthRows.length);
    drawHealth();
  } catch (error) {
    failed(error);
  }
});
$("#more").addEventListener("click", async () => {
  try {
    await loadPage(state().q, nextAfter);
    drawList();
  } catch (error) {
    failed(error);
  }
});
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("#token").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  $("#token").value = "";
  render();
});
$("#token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
});
window.addEventListener("hashchange", render);
render();
