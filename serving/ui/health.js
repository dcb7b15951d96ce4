// Health: GET /v1/monitor a page at a time, worst first in the router's order (the page never
// re-sorts these rows), "Load more" resuming after the last key shown (after=…, keyset: rows
// never repeat or go missing as drift and actuals move partitions while one reads, as they did
// by offset); and one partition's health row (GET /v1/monitor?key=…, read by key).
import { $, days, el, fmt, known, ratioCell, readableKey, table } from "./dom.js";
import { api, pageSize, go, status } from "./api.js";

let healthRows = [];
let healthTotal = 0;
let healthAfter = null; // the last key shown when more follow (the page's next_after)
let driftMinRows = null; // the router's drift_min_rows, read with each page

const HEADERS = ["drift (feature)", "live / validation", "live / naive", "live error", "actuals", "model age", "data age", "flags"];

/** What the monitor's errors are (lower is better), named as they read: an accuracy's is its
 * error rate (1 − accuracy; "accuracy 0.000" was a perfect model), a neg_ scorer's its loss
 * ("neg_mean_absolute_error 98.73" was a positive number under a negative name). */
function errorName(metric) {
  return metric === "accuracy" ? "error rate" : metric.replace(/^neg_/, "");
}

/** A drift cell: "— (30/50 rows)" for a partition sampled too little to be scored, as
 * `manymodels monitor` prints it, where a bare "–" read as if its traffic had not been looked
 * at (or nothing were wrong); `minRows` is the page's `drift_min_rows`. */
function driftCell(h, minRows) {
  if (known(h.drift)) return el("td", { class: "num drift" }, `${fmt(h.drift)} (${h.drift_feature})`);
  if (h.sampled_rows > 0 && h.sampled_rows < minRows) {
    return el("td", { class: "num drift", title: `drift is scored from ${minRows} sampled rows of traffic on; this partition's routers have sampled ${h.sampled_rows}` },
      `— (${h.sampled_rows}/${minRows} rows)`);
  }
  return el("td", { class: "num drift" }, "–");
}

/** The monitor's cells of one partition, after its key and version. */
function cells(h, minRows) {
  return [
    driftCell(h, minRows),
    ratioCell(h.error_ratio, h.live_error, h.validation_error),
    ratioCell(h.naive_ratio, h.live_error, h.naive_error),
    el("td", { class: "num", title: known(h.label_error) ? "the most probable class's error (as validation and naive are counted) · the labels' at the threshold" : "" },
      known(h.live_error) ? `${errorName(h.live_metric)} ${fmt(h.live_error, 4)}` + (known(h.label_error) ? ` · labels ${fmt(h.label_error, 4)}` : "") : "–"),
    el("td", { class: "num" }, h.live_rows),
    el("td", { class: "num" }, days(h.model_age_days)),
    el("td", { class: "num" }, days(h.data_age_days)),
    el("td", { class: "flags", title: h.note || "" }, h.flags.map((f) => el("span", { class: "badge flag", title: f === "unseen" ? h.unseen_reason : null }, f))
      .concat(h.note ? [el("span", { class: "badge" }, "not judged")] : [])
      // requests carry text values the version never saw: said as `manymodels monitor` says it
      .concat(h.flags.includes("unseen") ? [el("span", { class: "unseen" }, h.unseen_reason)] : [])),
  ];
}

async function loadHealth(sort, after) {
  const params = new URLSearchParams({ sort, limit: String(pageSize()) });
  if (after) params.set("after", after);
  const page = await api(`/v1/monitor?${params}`);
  const shown = new Set(healthRows.map((h) => h.key));
  healthRows = healthRows.concat(page.partitions.filter((h) => !shown.has(h.key)));
  healthTotal = page.total;
  healthAfter = page.next_after;
  driftMinRows = page.drift_min_rows;
}

function drawHealth() {
  $("#health tbody").replaceChildren(
    ...healthRows.map((h) => el("tr", { "data-key": h.key },
      el("td", {}, el("a", { href: "#", title: h.key, onclick: (e) => { e.preventDefault(); go({ p: h.key, health: "" }); } }, readableKey(h.key))),
      el("td", { class: "num" }, `v${h.version}`),
      ...cells(h, driftMinRows),
    )),
  );
  $("#health-more").hidden = !healthAfter;
  const order = $("#health-sort").value === "key" ? "by key" : "worst first"; // a key ranks nothing
  $("#health-note").textContent = `${healthRows.length} of ${healthTotal} partition(s) in production, ${order} (the router's order).`;
}

export async function renderHealth(sort) {
  $("#health-sort").value = sort;
  // "Worst first by key" read as a ranking: an order of keys ranks nothing
  $("#health-sort-label").textContent = sort === "key" ? "Ordered by" : "Worst first by";
  healthRows = [];
  healthAfter = null;
  await loadHealth(sort, null);
  drawHealth();
  const by = $("#health-sort").selectedOptions[0].textContent;
  status(sort === "key" ? "Partition health, by key." : `Partition health, worst first by ${by}.`);
}

export async function moreHealth(sort) {
  await loadHealth(sort, healthAfter);
  drawHealth();
}

/** One partition's monitor page (its health row and recent actuals), or the error (the page
 * shows why there is no row; a 401 is thrown: the token form must say so). */
export async function monitorOf(key) {
  try {
    return await api(`/v1/monitor?${new URLSearchParams({ key })}`);
  } catch (error) {
    if (error.status === 401) throw error;
    return error;
  }
}

/** The partition page's health row: drift, live error vs validation and naive, data and model
 * age, flags — or why there is none. */
export function healthRow(page) {
  if (page instanceof Error) return el("p", { class: "hint", id: "health-row" }, `No health row: ${page.message}`);
  const h = page.partitions[0];
  if (!h) return el("p", { class: "hint", id: "health-row" }, "No health row: the partition has no production version (or it is the fallback).");
  return el("div", { id: "health-row" },
    table(["version", "validation error", ...HEADERS],
      el("tr", { "data-health": h.key },
        el("td", { class: "num" }, `v${h.version}`),
        el("td", { class: "num" }, known(h.validation_error) ? `${errorName(h.live_metric)} ${fmt(h.validation_error, 4)}` : "–"),
        ...cells(h, page.drift_min_rows))),
    el("p", { class: "hint" }, h.live_rows ? `Live error on ${h.live_rows} posted actual(s).` : "No actuals posted for this version yet (POST …/actuals)."));
}
