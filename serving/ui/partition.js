// One partition: its health row, versions, alias history with reasons, the runs that made
// them, why this model, and its forecast (with prediction intervals when the version has them).
import { $, age, badges, el, fmt, known, metricView, pct, period, readable, shortEstimator, skillCell, table } from "./dom.js";
import { api, go, keyPath, status } from "./api.js";
import { chart, levelsOf } from "./chart.js";
import { healthRow, monitorOf } from "./health.js";

const HORIZON = 8; // forecast periods drawn
const LEVELS = "80,95"; // interval levels asked for when the version's own are not known

function explanation(ex) {
  const [metric, score] = metricView(ex.metric, ex.score);
  const shown = (x) => fmt(metricView(ex.metric, x)[1], 4);
  const biggest = Math.max(1e-12, ...ex.terms.map((t) => Math.abs(t.value)));
  return el("div", {},
    el("p", {}, `v${ex.version} · ${ex.estimator} · ${metric} ${fmt(score, 4)} vs naive ${shown(ex.naive_score)} (skill ${pct(ex.skill)})`),
    table(["candidate", "params", metric, "error"], ex.candidates.map((c) => el("tr", {},
      el("td", {}, c.label || shortEstimator(c.estimator)),
      el("td", {}, el("code", {}, JSON.stringify(c.params || {}))),
      el("td", { class: "num" }, shown(c.score)),
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

async function forecastOf(key, levels) {
  return api(`/v1/partitions/${keyPath(key)}/forecast${levels ? `?levels=${levels}` : ""}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ horizon: HORIZON }),
  });
}

/** A number a chart can place: a regression's answer, or a class that is 0/1 or true/false. */
function plotted(value) {
  return typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));
}

/** A classifier of text classes ("churn", "stay") has nothing to draw: its chart read "max
 * -Infinity … min Infinity" over empty lines. Its steps, and its newest posted actuals beside
 * what the version answered, are listed instead. */
function classTable(forecast, actuals, threshold) {
  const labelled = forecast.some((p) => known(p.label));
  return el("div", { id: "forecast-classes" },
    table(["period", "most probable class", ...(labelled ? [`label (threshold ${fmt(threshold, 3)})`] : [])],
      forecast.map((p) => el("tr", { class: "step" },
        el("td", { class: "when" }, period(p.time)),
        el("td", {}, String(p.prediction)),
        ...(labelled ? [el("td", {}, String(p.label))] : []),
      ))),
    actuals.length
      ? table(["posted actual", "time", "answered"], actuals.slice(-HORIZON).map((a) => el("tr", { class: "actual-row" },
          el("td", {}, String(a.actual)),
          el("td", { class: "when" }, a.time === null ? "–" : period(a.time)),
          el("td", { class: String(a.actual) === String(a.prediction) ? "" : "bad" }, String(a.prediction)),
        )))
      : null,
  );
}

/** The levels production's version recorded (`[intervals] levels`: 90 alone, say), as the
 * detail lists them; LEVELS when it does not list that version. Asking 80,95 of a version
 * that recorded 90 was a 422, and the chart then said it "recorded no prediction intervals". */
function recordedLevels(detail) {
  const production = detail.aliases.production;
  const version = detail.versions.find((v) => v.version === production);
  if (!version || !Array.isArray(version.interval_levels)) return LEVELS;
  return version.interval_levels.join(",");
}

async function forecastBox(key, actuals, asked) {
  try {
    let body;
    try {
      body = await forecastOf(key, asked);
    } catch (error) {
      if (error.status !== 422 || !asked) throw error;
      body = await forecastOf(key, ""); // no intervals recorded: the forecast alone
    }
    const levels = levelsOf(body.forecast);
    const values = body.forecast.map((p) => p.prediction).concat(actuals.flatMap((a) => [a.actual, a.prediction]));
    if (!values.every(plotted)) {
      return el("div", { id: "forecast", "data-actuals": actuals.length }, classTable(body.forecast, actuals, body.threshold),
        el("p", { class: "hint" }, `The next ${HORIZON} periods from production v${body.version}, exogenous features carried forward: ` +
          "classes, listed rather than drawn" + (actuals.length ? `; below them the newest of the ${actuals.length} posted actual(s) and what v${body.version} answered.` : ".")));
    }
    return el("div", { id: "forecast", "data-levels": levels.join(","), "data-actuals": actuals.length }, chart(body.forecast, actuals),
      el("p", { class: "hint" }, `The next ${HORIZON} periods from production v${body.version}, exogenous features carried forward` +
        (levels.length ? `, with ${levels.map((l) => `${l} %`).join(" and ")} prediction intervals.` : "; this version recorded no prediction intervals.") +
        (actuals.length
          ? ` Before it, the newest ${actuals.length} posted actual(s) (grey) and what v${body.version} answered for them (dashed).`
          : " No actuals posted for this version yet: POST …/actuals draws them here.")));
  } catch (error) {
    if (error.status === 401) throw error;
    return el("p", { class: "hint", id: "forecast" }, `No forecast: ${error.message}`);
  }
}

/** A metric's name that may wrap after each "_" (a <wbr>, no character added): in the
 * versions table's narrow column "root_mean_squared_error" ran into the next column, or broke
 * anywhere ("root_mean_s|quared_erro|r"). */
const breakable = (name) => name.split("_").flatMap((part, i, all) => (i < all.length - 1 ? [`${part}_`, el("wbr", {})] : [part]));

export async function renderPartition(key) {
  const view = $("#partition-view");
  const detail = await api(`/v1/partitions/${keyPath(key)}`);
  const monitor = await monitorOf(detail.partition);
  const actuals = monitor instanceof Error ? [] : monitor.actuals || [];
  const [ex, forecast] = await Promise.all([
    api(`/v1/partitions/${keyPath(key)}/explain`).catch((error) => error),
    forecastBox(key, actuals, recordedLevels(detail)),
  ]);
  const health = healthRow(monitor);
  const mixed = new Set(detail.versions.map((v) => v.metric)).size > 1;
  const production = detail.aliases.production;
  view.dataset.key = detail.partition;
  view.replaceChildren(
    el("p", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); go({ p: "" }); } }, "← all partitions")),
    el("h2", { title: detail.partition }, readable(detail)),
    el("p", {}, "production ", el("strong", { id: "production-version" }, production ? `v${production}` : "none"),
      ` · router serves ${detail.serving.version ? `v${detail.serving.version}` : "–"} · `, badges(detail.aliases)),
    el("h2", {}, "Health"),
    health,
    el("div", { class: "grid" },
      el("div", {},
        el("h2", {}, "Versions"),
        // the metric's natural sign and name, as `models list` prints them ("log_loss 0.494",
        // not "score -0.494": neg_ scorers are stored higher-is-better); versions scored on
        // different metrics (a constant below min_rows on log_loss beside the spec's) each
        // name theirs in a "metric" column, as `models show` does: the first version's named
        // the column for all
        table(["version", "estimator", ...(mixed ? ["metric", "score"] : [metricView(detail.versions[0]?.metric)[0]]), "naive", "skill", "rows", "created", "aliases"],
          detail.versions.map((v) => el("tr", { "data-version": v.version },
            el("td", { class: "num" }, `v${v.version}`),
            el("td", {}, shortEstimator(v.estimator)),
            ...(mixed ? [el("td", { class: "metric" }, breakable(metricView(v.metric)[0]))] : []),
            el("td", { class: "num", title: metricView(v.metric)[0] }, fmt(metricView(v.metric, v.score)[1], 4)),
            el("td", { class: "num" }, fmt(metricView(v.metric, v.naive_score)[1], 4)),
            skillCell(v.skill),
            el("td", { class: "num" }, v.n_rows),
            el("td", { class: "when" }, age(v.created_at)),
            el("td", {}, v.aliases.join(", ")),
          ))),
        el("h2", {}, "Alias history"),
        // the action recorded with each move: a retirement read "v1 → –" as if production
        // had merely lost its version
        table(["at", "alias", "action", "move", "reason", "run"],
          detail.alias_history.slice().reverse().map((m) => el("tr",
            { class: "move", "data-action": m.action },
            el("td", { class: "when" }, age(m.at)),
            el("td", {}, m.alias),
            el("td", {}, m.action),
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
  status(`Partition ${readable(detail)}.`);
}
