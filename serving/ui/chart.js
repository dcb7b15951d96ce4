// An inline SVG chart of a forecast (no chart library: the page works offline), with its
// prediction intervals as bands when the API returned them (lo-80/hi-80, lo-95/hi-95, …), after
// the partition's newest posted actuals and what the version answered for them.
import { fmt, period } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

/** The interval levels present on every point, widest first (drawn under the narrower). */
export function levelsOf(points) {
  const first = points[0] && points[0].intervals;
  if (!first) return [];
  return Object.keys(first)
    .filter((k) => k.startsWith("lo-") && `hi-${k.slice(3)}` in first)
    .map((k) => k.slice(3))
    .filter((level) => points.every((p) => p.intervals && p.intervals[`lo-${level}`] !== null && p.intervals[`hi-${level}`] !== null))
    .sort((a, b) => Number(b) - Number(a));
}

export function chart(points, actuals = []) {
  const w = 560, h = 200, pad = 40;
  const m = actuals.length;
  const past = actuals.map((a) => [Number(a.actual), Number(a.prediction)]);
  const ys = points.map((p) => Number(p.prediction));
  const levels = levelsOf(points);
  const all = ys.concat(past.flat(), ...levels.map((l) => points.flatMap((p) => [p.intervals[`lo-${l}`], p.intervals[`hi-${l}`]])))
    .filter((v) => Number.isFinite(v));
  const lo = Math.min(...all), hi = Math.max(...all);
  const step = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, m + points.length - 1);
  const x = (i) => step(m + i); // forecast steps come after the actuals
  const y = (v) => (hi === lo ? h / 2 : h - pad - ((v - lo) * (h - 2 * pad)) / (hi - lo));
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  levels.forEach((level, n) => {
    const upper = points.map((p, i) => `${x(i)},${y(p.intervals[`hi-${level}`])}`);
    const lower = points.map((p, i) => `${x(i)},${y(p.intervals[`lo-${level}`])}`).reverse();
    add("polygon", { points: upper.concat(lower).join(" "), fill: "#444ce7", "fill-opacity": 0.12 + 0.1 * n, class: `band band-${level}` });
  });
  if (m) {
    const line = (k) => past.map((v, i) => `${step(i)},${y(v[k])}`).join(" ");
    add("polyline", { points: line(1), fill: "none", stroke: "#444ce7", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "answered" });
    add("polyline", { points: line(0), fill: "none", stroke: "#667085", "stroke-width": 2, class: "actual" });
    past.forEach((v, i) => add("circle", { cx: step(i), cy: y(v[0]), r: 2.5, fill: "#667085" }));
  }
  add("polyline", { points: ys.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: "#444ce7", "stroke-width": 2 });
  ys.forEach((v, i) => add("circle", { cx: x(i), cy: y(v), r: 3, fill: "#444ce7" }));
  add("text", { x: pad, y: 16, "font-size": 12 }, `max ${fmt(hi, 4)}` + (levels.length ? ` · bands: ${levels.map((l) => `${l} %`).join(", ")}` : ""));
  const first = m && actuals[0].time !== null ? actuals[0].time : points[0].time;
  add("text", { x: pad, y: h - 6, "font-size": 12 }, `${period(first)} … ${period(points[points.length - 1].time)} · min ${fmt(lo, 4)}`);
  return svg;
}
