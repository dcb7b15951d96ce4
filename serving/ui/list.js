// The partitions list: a page at a time from GET /v1/partitions, in the router's order — by key,
// or the whole registry worst first by skill, score or model age (sort=…: ordered on the server
// along an index, so "Load more" continues the same order over every partition).
import { $, age, badges, el, fmt, metricView, readable, readableKey, shortEstimator, skillCell } from "./dom.js";
import { api, pageSize, canonicalPrefix, go, state, status } from "./api.js";

let listed = []; // the rows loaded so far, in the API's order
let nextAfter = null;

async function loadPage(q, sort, after) {
  const params = new URLSearchParams({ limit: String(pageSize()) });
  if (q) params.set("prefix", canonicalPrefix(q));
  if (sort !== "key") params.set("sort", sort);
  if (after) params.set("after", after);
  const page = await api(`/v1/partitions?${params}`);
  listed = listed.concat(page.partitions);
  nextAfter = page.next_after;
}

function drawList() {
  $("#partitions tbody").replaceChildren(
    ...listed.map((p) => {
      const v = p.production;
      return el(
        "tr",
        { "data-key": p.partition },
        el("td", {}, el("a", { href: "#", title: p.partition, onclick: (e) => { e.preventDefault(); go({ p: p.partition }); } }, readable(p))),
        el("td", { class: "num" }, v ? `v${v.version}` : "–"),
        el("td", {}, v ? shortEstimator(v.estimator) : "–"),
        skillCell(v ? v.skill : null),
        el("td", { class: "num", title: v ? metricView(v.metric)[0] : null }, v ? fmt(metricView(v.metric, v.score)[1]) : "–"),
        el("td", {}, v ? age(v.created_at) : "–"),
        el("td", {}, badges(p.aliases)),
      );
    }),
  );
  $("#more").hidden = !nextAfter;
  const { sort } = state();
  $("#list-note").textContent =
    `${listed.length} partition(s) loaded` + (nextAfter ? " — more match (Load more continues the same order)" : "") +
    (sort === "key" ? "." : ": the order is over every partition in production, not only the rows loaded.") +
    (sort === "score" ? " Raw scores are in each partition's metric units, not comparable across partitions of different scale" +
      " (a large partition's error ranks it first however good its model): sort by skill vs naive for the worst models first." : "");
}

export async function renderList() {
  const { q, sort } = state();
  $("#q").value = q;
  $("#sort").value = sort;
  listed = [];
  nextAfter = null;
  await loadPage(q, sort, null);
  drawList();
  const order = $("#sort").selectedOptions[0].textContent;
  status(`${q ? `Partitions whose key starts with “${q}”` : "All partitions"}, by ${order}.`);
  await renderJobs();
}

export async function loadMore() {
  const { q, sort } = state();
  await loadPage(q, sort, nextAfter);
  drawList();
}

async function renderJobs() {
  const box = $("#jobs");
  try {
    const { jobs } = await api("/v1/jobs?limit=20");
    if (!jobs.length) {
      box.replaceChildren(el("p", { class: "hint" }, "No retrain job recorded in this registry (the list is every router's that shares it, kept across restarts)."));
      return;
    }
    box.replaceChildren(
      el("table", {},
        el("thead", {}, el("tr", {}, ["job", "partition", "status", "outcome", "version", "created", "error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, jobs.map((j) => el("tr", {},
          el("td", {}, el("code", {}, j.job_id)),
          el("td", { class: "job-partition", title: j.partition }, readableKey(j.partition)),
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
