// Failures: the partitions of one run (default: the newest) that produced no version, with the
// reason — GET /v1/failures, by key, a page at a time, searched by key prefix on the server.
import { $, age, el, readableKey } from "./dom.js";
import { api, pageSize, canonicalPrefix, go, state, status } from "./api.js";

let rows = [];
let nextAfter = null;

async function load(run, q, after) {
  const params = new URLSearchParams({ limit: String(pageSize()) });
  if (run && run !== "latest") params.set("run", run);
  if (q) params.set("prefix", canonicalPrefix(q));
  if (after) params.set("after", after);
  const page = await api(`/v1/failures?${params}`);
  rows = rows.concat(page.failures);
  nextAfter = page.next_after;
  return page;
}

// A partition with a version (from an earlier run) links to its page; one with none has no page
// (it led to "no partition … in the registry"): its key alone, saying who answers for it.
function partitionCell(f) {
  if (f.latest_version == null) {
    return el("td", {}, el("span", { title: "no version of its own yet: the fallback model, if any, answers for it" }, readableKey(f.partition)));
  }
  return el("td", {}, el("a", { href: "#", title: f.partition, onclick: (e) => { e.preventDefault(); go({ p: f.partition, failures: "", q: "" }); } }, readableKey(f.partition)));
}

function draw(page) {
  $("#failures tbody").replaceChildren(
    ...rows.map((f) => el("tr", { "data-key": f.partition },
      partitionCell(f),
      el("td", { class: f.status === "failed" ? "bad" : "" }, f.status),
      el("td", {}, el("code", {}, f.error_type)),
      el("td", { class: "reason" }, f.message),
      el("td", { class: "num" }, f.rows),
    )),
  );
  $("#failures-more").hidden = !nextAfter;
  if (page) {
    $("#failures-note").textContent = page.run_id
      ? `Run ${page.run_id} (${page.run_kind}, started ${age(page.run_started_at)}): ${page.n_failed} failed, ${page.n_skipped} skipped; ${rows.length} shown.`
      : "No run recorded yet.";
  }
}

export async function renderFailures(run) {
  const { q } = state();
  $("#failures-q").value = q;
  rows = [];
  nextAfter = null;
  draw(await load(run, q, null));
  status(`Partitions with no new version${q ? ` whose key starts with “${q}”` : ""}, by key.`);
}

export async function moreFailures(run) {
  await load(run, state().q, nextAfter);
  draw(null);
}
