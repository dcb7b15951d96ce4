// Runs: the registry's recent runs, newest first (GET /v1/runs), each with a progress bar of its
// planned partitions by outcome. While a run is running the panel polls it
// (GET /v1/runs/{id}) every POLL_MS and redraws its row; it stops when no shown run is running
// or the view is left. "done" is trained + skipped + failed: lost partitions wait for a resume.
import { $, age, el } from "./dom.js";
import { api, pageSize, go, status } from "./api.js";

const POLL_MS = 1000;
const SEGMENTS = ["trained", "skipped", "failed", "lost"];

let runs = [];
let nextAfter = null;
let timer = null;
let polls = 0;

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A bar of the planned partitions: one segment per outcome, the rest left empty. */
function bar(r) {
  const planned = Math.max(r.planned, 1);
  return el("div", { class: "progress", title: SEGMENTS.map((s) => `${s} ${r.counts[s] || 0}`).join(", ") },
    SEGMENTS.filter((s) => r.counts[s]).map((s) =>
      el("span", { class: `seg ${s}`, style: `width: ${(100 * r.counts[s]) / planned}%` })));
}

function counts(r) {
  const parts = SEGMENTS.filter((s) => r.counts[s]).map((s) => `${r.counts[s]} ${s}`);
  if (r.unchanged) parts.push(`${r.unchanged} unchanged`);
  return parts.join(", ") || "nothing yet";
}

/** Running and moving: not a run marked running whose process is gone (killed) or silent. */
function live(r) {
  return r.status === "running" && !r.process_gone && !r.silent_seconds;
}

function row(r) {
  const running = live(r);
  const state = r.state || r.status;
  return el("tr", { "data-run": r.run_id, "data-done": r.done, "data-status": r.status },
    el("td", {}, el("a", { href: "#", title: "this run's failed and skipped partitions", onclick: (e) => { e.preventDefault(); go({ runs: "", failures: r.run_id }); } }, el("code", {}, r.run_id))),
    el("td", {}, r.spec_name),
    el("td", { class: running ? "running" : r.status === "completed" ? "good" : "bad" }, state),
    el("td", {}, age(r.started_at)),
    el("td", { class: "progress-cell" }, bar(r),
      el("span", { class: "progress-text" }, `${r.done} of ${r.planned} done (${(100 * r.share_done).toFixed(0)} %)`)),
    el("td", {}, counts(r)),
    el("td", { class: "num" }, duration(r.elapsed_seconds)),
    el("td", { class: "num" }, r.rate_per_second ? `${r.rate_per_second.toPrecision(3)}/s` : "–"),
    el("td", { class: "num" }, running ? duration(r.eta_seconds) : "–"),
  );
}

function draw() {
  $("#runs tbody").replaceChildren(...runs.map(row));
  $("#runs-more").hidden = !nextAfter;
  const active = runs.filter(live).length;
  $("#runs-note").textContent = `${runs.length} run(s), newest first${active ? `; ${active} running, refreshed every ${POLL_MS / 1000} s` : ""}.`;
  $("#runs-view").dataset.polls = String(polls);
}

async function load(after) {
  const params = new URLSearchParams({ limit: String(Math.min(pageSize(), 50)) });
  if (after) params.set("after", after);
  const page = await api(`/v1/runs?${params}`);
  runs = runs.concat(page.runs);
  nextAfter = page.next_after;
}

function stop() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

/** Poll each running run until none is, or the view is left; a failed poll stops polling
 * and says why (the rows keep what they last showed). */
function schedule() {
  stop();
  if (!runs.some(live)) return;
  timer = setTimeout(async () => {
    if ($("#runs-view").hidden) return stop();
    try {
      for (const [i, r] of runs.entries()) {
        if (live(r)) runs[i] = await api(`/v1/runs/${encodeURIComponent(r.run_id)}`);
      }
      polls += 1;
      draw();
      schedule();
    } catch (error) {
      status(`Stopped refreshing the runs: ${error.message}`, true);
    }
  }, POLL_MS);
}

export async function renderRuns() {
  stop();
  runs = [];
  nextAfter = null;
  polls = 0;
  await load(null);
  draw();
  status("Training runs, newest first: each bar is its planned partitions by outcome.");
  schedule();
}

export async function moreRuns() {
  await load(nextAfter);
  draw();
  schedule();
}

export { stop as stopRuns };
