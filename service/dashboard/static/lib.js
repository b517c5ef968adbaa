/* Small helpers shared by the views: building elements, calling the API, formatting. */

export const REFRESH_MS = 2000;
export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#475569", "#ea580c"];

/** An element: h("a", {href: "#/", class: "x", onclick: f, style: {width: "5%"}}, "text", child, …).
 *  Text is always set as text (never parsed as HTML), so names from the API are safe; styles
 *  are set through the CSSOM (el.style), which the page's Content-Security-Policy allows where
 *  it refuses inline style attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key === "value" || key === "checked") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  const nodes = children.flat().filter((c) => c != null);
  el.append(...nodes.map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/* The session: the API token the sign-in page took, kept in this tab's sessionStorage and sent
 * as the Authorization header on every request (never in a URL, never as a cookie: a page on
 * another site cannot make the browser send it). With GRADLAB_AUTH=off there is none. */
const TOKEN_KEY = "gradlab.token";
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn(token) { sessionStorage.setItem(TOKEN_KEY, token); whoLoad = null; },
  signOut() { sessionStorage.removeItem(TOKEN_KEY); whoLoad = null; catalogLoad = null; },
};

/** fetch() with the session's token; a 401 ends the session and shows the sign-in page. */
export async function authFetch(path, { headers = {}, ...options } = {}) {
  const token = session.token();
  const all = token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
  const res = await fetch(path, { ...options, headers: all });
  if (res.status === 401 && !path.endsWith("v1/me")) {
    session.signOut();
    location.hash = "#/sign-in";
  }
  return res;
}

/** JSON from the API (relative URL); throws ApiError with the error body on a non-2xx answer. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  const res = await authFetch(path, { method, body, headers, signal });
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

let whoLoad = null;

/** Who the session is ({name, role}), or null when the server wants a token it lacks. */
export function whoami() {
  whoLoad ??= authFetch("v1/me").then(async (res) => {
    if (res.ok) return res.json();
    whoLoad = null;
    if (res.status === 401) return null;
    throw new ApiError(res.status, null);
  });
  return whoLoad;
}

/** An image, a CSV or JSON from the API as an object URL: fetched with the token, which an
 *  <img src> or a plain link could not send. */
export async function blobUrl(path, signal) {
  const res = await authFetch(path, { signal });
  if (!res.ok) throw new ApiError(res.status, null);
  return URL.createObjectURL(await res.blob());
}

/** A link that fetches `path` with the token and saves it as `filename`. */
export function fileLink(label, path, filename) {
  return h("a", {
    href: "#", "data-path": path, onclick: async (event) => {
      event.preventDefault();
      const url = await blobUrl(path);
      const a = h("a", { href: url, download: filename });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    },
  }, label);
}

let catalogLoad = null;

/** GET v1/catalog, asked once per page load (again only after a failure): what the server
 *  knows, such as a job's statuses, `statuses.all` and `statuses.terminal` (those it never leaves). */
export function catalog() {
  catalogLoad ??= api("v1/catalog").catch((err) => {
    catalogLoad = null;
    throw err;
  });
  return catalogLoad;
}

export const fmt = {
  num(v, digits = 4) {
    if (v == null || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(+v.toPrecision(digits));
  },
  pct: (v) => (v == null ? "–" : `${(100 * v).toFixed(1)}%`),
  err: (v) => (v == null ? "–" : v.toExponential(2)),
  ago(iso) {
    if (!iso) return "–";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  },
};

export const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);
export const jobLabel = (job) => job.name || job.id.slice(-8);
export const jobLink = (job) => h("a", { href: `#/jobs/${job.id}` }, jobLabel(job));
export const swatch = (color) => h("span", { class: "swatch", style: { background: color } });
export const num = (text) => h("td", { class: "num" }, text);

export function modelLabel(spec) {
  if (!spec.model) return "external run"; // logged by its owner's loop, without a recipe
  const sizes = spec.model.hidden_sizes;
  return spec.model.kind + (sizes ? ` [${sizes}]` : "");
}

export function progress(done, total) {
  if (total == null) return h("span", { class: "progress" }, `${done}`); // an external run's own count
  const pct = total ? (100 * done) / total : 0;
  return h("span", { class: "progress", title: `${Math.floor(pct)}%` }, `${done} / ${total}`,
    h("span", { class: "bar" }, h("span", { style: { width: `${pct}%` } })));
}

export const section = (title, ...body) => h("section", { class: "card" }, h("h2", {}, title), ...body);

const NUMERIC = ["loss", "accuracy", "iterations", "final loss", "best loss", "max rel. error", "rtol",
  "kinks", "checked"];

/** A table with a header row; `body` is a <tbody> (to fill later) or the rows. Columns named in
 *  `numeric` (besides the usual ones) get right-aligned headers, like their numbers. */
export function table(id, headers, body, numeric = []) {
  const tbody = body instanceof HTMLTableSectionElement ? body : h("tbody", {}, body);
  const right = (t) => NUMERIC.includes(t) || numeric.includes(t);
  const head = h("tr", {}, headers.map((t) => h("th", { class: right(t) ? "num" : null }, t)));
  return h("table", { id, class: "grid" }, h("thead", {}, head), tbody);
}
