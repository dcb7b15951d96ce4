// DOM and formatting helpers shared by the dashboard's views. API data always goes in as text
// nodes (never as HTML), so a key or a message cannot inject markup.

export const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children; text goes in as text nodes, never as HTML. */
export function el(tag, attrs, ...children) {
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

export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

export const known = (x) => x !== null && x !== undefined;
export const fmt = (x, digits = 3) => (known(x) ? Number(x).toPrecision(digits) : "–");
export const pct = (x) => (known(x) ? `${(100 * x).toFixed(1)} %` : "–");
export const days = (x) => (known(x) ? `${Number(x).toFixed(1)} d` : "–");
/** A score as `manymodels models list` prints it: scikit-learn's neg_ scorers are stored
 * higher-is-better (a log_loss of 0.494 as -0.494), so they show negated under their plain name.
 * Returns [name, the score as shown]. */
export function metricView(metric, score) {
  const neg = (metric || "").startsWith("neg_");
  return [neg ? metric.slice(4) : metric || "score", known(score) && neg ? -score : score];
}
export const shortEstimator = (name) => (name || "").split(/[.:]/).pop();

/** A step's or an actual's time as a row of a list shows it: "2024-02-10" for a midnight,
 * "2024-01-07 06:00" otherwise (cut to its date, every hourly step of a day read the same), a
 * period number as it is. */
export function period(t) {
  const s = String(t);
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?(.*)$/.exec(s);
  if (!m) return s;
  const seconds = m[3] && !/^:00(\.0+)?$/.test(m[3]) ? m[3] : "";
  return m[2] === "00:00" && !seconds ? m[1] : `${m[1]} ${m[2]}${seconds}${m[4]}`;
}

export function age(iso) {
  if (!iso) return "–";
  const d = (Date.now() - Date.parse(iso)) / 86400000;
  const minutes = Math.max(0, Math.round(d * 1440));
  const ago = minutes < 60 ? `${minutes} min ago` : d < 1 ? `${Math.round(d * 24)} h ago` : `${Math.round(d)} d ago`;
  return `${iso.slice(0, 16).replace("T", " ")} (${ago})`;
}

/** "store=1, brand=dominick's/own label": the key's values as sent, not percent-encoded. */
export function readable(p) {
  const pairs = Object.entries(p.key_values || {});
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : readableKey(p.partition);
}

/** A canonical key ("user=%C3%BCn%20x", each column and value percent-encoded, "," between
 * them) as ``readable`` shows it ("user=ün x"), for answers that carry the key alone (the
 * monitor, a run's failures): the views of one partition read the same everywhere. A key
 * that does not decode (no such key is written) is shown as it is. */
export function readableKey(key) {
  try {
    return key.split(",").map((part) => {
      const at = part.indexOf("=");
      return at < 0 ? decodeURIComponent(part) : `${decodeURIComponent(part.slice(0, at))}=${decodeURIComponent(part.slice(at + 1))}`;
    }).join(", ");
  } catch {
    return key;
  }
}

export function skillCell(skill) {
  return el("td", { class: `num ${known(skill) && skill <= 0 ? "bad" : "good"}` }, pct(skill));
}

/** A ratio of errors (live over validation, live over naive): red from 1 up, as the monitor's
 * "degraded" trigger reads it. A live error over a zero one (a perfect validation) is infinite,
 * which JSON writes null, as an undefined one: its errors (`live`, `base`) tell them apart. */
export function ratioCell(x, live, base) {
  if (!known(x) && known(live) && live > 0 && base === 0) return el("td", { class: "num bad" }, "∞");
  return el("td", { class: `num${known(x) && x >= 1 ? " bad" : ""}` }, known(x) ? fmt(x) : "–");
}

export function badges(aliases) {
  return Object.entries(aliases || {}).map(([name, v]) => el("span", { class: "badge" }, `${name}: v${v}`));
}
