// The router's JSON API as the page calls it, and the view's state in the URL hash.
// A token, when the user enters one, lives in sessionStorage only and is sent as
// "Authorization: Bearer" on every call, never in a URL.
import { $ } from "./dom.js";

export const TOKEN_KEY = "manymodels.token";
const PAGE = 200; // rows per API call (the API allows up to 1000)

/** Rows per API call: the link's &limit= (1–1000), else PAGE. */
export function pageSize() {
  const n = Number(state().limit);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : PAGE;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

/** One JSON call to the router; a non-2xx answer becomes an ApiError with the API's detail. */
export async function api(path, init = {}) {
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
export function keyPath(key) {
  if (/^(?:\.|%2e)+$/i.test(key)) throw new ApiError(404, `no partition '${key}'`); // a dot-segment
  return key.replace(/[^A-Za-z0-9=,%._~!$&'()*+;:@-]/g, (c) => encodeURIComponent(c));
}

/** The view: #q=<prefix>&sort=<key|skill|score|age>, #p=<partition key>,
 * #health=<drift|error|naive|age|key>, #failures=<run id|latest>&q=<prefix>, #runs=recent; &limit=<n> pages. */
export function state() {
  const params = new URLSearchParams(location.hash.slice(1));
  return {
    q: params.get("q") || "",
    sort: params.get("sort") || "key",
    p: params.get("p") || "",
    health: params.get("health") || "",
    failures: params.get("failures") || "",
    runs: params.get("runs") || "", // #runs=recent: the Runs panel
    limit: params.get("limit") || "", // rows per page, when not PAGE (a link may ask for fewer)
  };
}

export function go(next) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...state(), ...next })) {
    if (value && !(name === "sort" && value === "key")) params.set(name, value);
  }
  location.hash = params.toString();
}

export function status(text, isError = false) {
  const node = $("#status");
  node.textContent = text;
  node.className = isError ? "error" : "";
}

export function failed(error) {
  if (error.status === 401 && token()) {
    status("The router refused this token: enter another one above, or forget it.", true);
  } else if (error.status === 401) {
    status("This router needs a read token: enter it above (it is kept for this tab only).", true);
  } else {
    status(`Error: ${error.message}`, true);
  }
  document.body.dataset.state = "error";
}

/** Python's quote(text, safe=":"), the encoding of a canonical key's columns and values. */
function quote(text) {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%3A/g, ":");
}

/** Each column and value of `text` ("col=value,col=value") passed through `each`. */
function byPart(text, each) {
  return text
    .split(",")
    .map((part) => {
      const at = part.indexOf("=");
      return at < 0 ? each(part) : `${each(part.slice(0, at))}=${each(part.slice(at + 1))}`;
    })
    .join(",");
}

/** A search as the canonical key text it must prefix: "store=1,brand=dominick's" as typed
 * becomes "store=1,brand=dominick%27s" (each column and value encoded as the registry does,
 * character by character, so a partial value still matches). Text that is already canonical
 * (copied from a key: each "%" starts an escape, and it is its own decoding encoded again;
 * a copy may end inside an escape, "%2", or inside a character of several bytes, "caf%C3"
 * of "caf%C3%A9") is kept as it is. Any other "%" is a character of the key:
 * "promo=50%off" searches "promo=50%25off" — taken as canonical, it matched nothing. */
export function canonicalPrefix(text) {
  const typed = byPart(text, quote);
  if (!text.includes("%")) return typed;
  const whole = withoutCutCharacter(text.replace(/%[0-9A-Fa-f]$/, "")); // a copy cut short
  try {
    if (byPart(whole, (part) => quote(decodeURIComponent(part))) === whole) return text;
  } catch {
    // "%" not followed by two hex digits (or not UTF-8): not canonical text
  }
  return typed;
}

/** ``text`` less the escapes of a UTF-8 character it ends inside: "caf%C3" (é is "%C3%A9")
 * is "caf", whose decoding can be checked; it did not decode, and the copy was taken for
 * typed text ("caf%25C3"), finding nothing. A lead byte with fewer continuation bytes after
 * it than it announces; anything else is left as it is. */
function withoutCutCharacter(text) {
  const tail = text.match(/(?:%[0-9A-Fa-f]{2}){1,3}$/);
  if (!tail) return text;
  const bytes = tail[0].slice(1).split("%").map((hex) => parseInt(hex, 16));
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes[lead] >= 0x80 && bytes[lead] < 0xc0) lead -= 1;
  if (lead < 0) return text;
  const b = bytes[lead];
  const needs = b >= 0xf5 ? 0 : b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc2 ? 1 : 0;
  const cut = needs > bytes.length - 1 - lead;
  return cut ? text.slice(0, text.length - 3 * (bytes.length - lead)) : text;
}
