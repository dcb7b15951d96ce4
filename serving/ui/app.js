// The manymodels dashboard: a static page over the router's JSON API — plain ES modules, no
// build step, no CDN. The view lives in the URL hash (api.js: state) so a link reproduces it.
// Modules: dom.js (elements, formats), api.js (calls, token, hash), list.js (partitions),
// health.js (the monitor), failures.js (a run's failures), runs.js (runs and their progress),
// partition.js (one partition),
// chart.js (the forecast chart); this file wires them to the page.
import { $ } from "./dom.js";
import { TOKEN_KEY, failed, go, state, token } from "./api.js";
import { loadMore, renderList } from "./list.js";
import { moreHealth, renderHealth } from "./health.js";
import { moreFailures, renderFailures } from "./failures.js";
import { moreRuns, renderRuns, stopRuns } from "./runs.js";
import { renderPartition } from "./partition.js";

const HEALTH_SORTS = new Set(["drift", "error"]); // list sorts answered by the health view

async function render() {
  document.body.dataset.state = "loading";
  const { p, health, failures, runs } = state();
  const view = p ? "partition" : health ? "health" : failures ? "failures" : runs ? "runs" : "list";
  if (view !== "runs") stopRuns();
  for (const name of ["list", "health", "failures", "runs", "partition"]) $(`#${name}-view`).hidden = name !== view;
  $("#token-state").textContent = token() ? "token set for this tab" : "no token";
  try {
    if (view === "partition") await renderPartition(p);
    else if (view === "health") await renderHealth(health);
    else if (view === "failures") await renderFailures(failures);
    else if (view === "runs") await renderRuns();
    else await renderList();
    document.body.dataset.state = "ready";
  } catch (error) {
    failed(error);
  }
}

/** A "Load more" button: its loader, then errors shown as any other. */
function more(button, load) {
  $(button).addEventListener("click", async () => {
    try {
      await load();
    } catch (error) {
      failed(error);
    }
  });
}

function sortBy(value) {
  if (HEALTH_SORTS.has(value)) go({ health: value, q: "", sort: "" });
  else go({ sort: value });
}

$("#search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const sort = $("#sort").value;
  if (HEALTH_SORTS.has(sort)) sortBy(sort);
  else go({ q: $("#q").value.trim(), sort, p: "" });
});
$("#sort").addEventListener("change", () => sortBy($("#sort").value));
$("#health-sort").addEventListener("change", () => go({ health: $("#health-sort").value }));
$("#failures-form").addEventListener("submit", (e) => {
  e.preventDefault();
  go({ q: $("#failures-q").value.trim() });
});
more("#more", loadMore);
more("#health-more", () => moreHealth(state().health));
more("#failures-more", () => moreFailures(state().failures));
more("#runs-more", moreRuns);
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
