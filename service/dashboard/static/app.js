/* gradlab dashboard: a hash-routed single page over the JSON API. No framework, no build
 * step; the one library is uPlot (vendored). Every URL is relative, so the page also works
 * behind a path prefix. Views:
 *   #/                         the job list (auto-refreshing)
 *   #/jobs/<id>                one job, live while it trains
 *   #/compare?ids=a,b | ?sweep=<id>   loss curves overlaid
 *   #/new                      submit a seed exercise with edited hyperparameters
 */
"use strict";

const TERMINAL = ["succeeded", "failed", "cancelled"];
const HISTORY_POINTS = 5000; // a long run's stored history is downsampled to this many points
const LIVE_POINTS = 50000; // past this, live points are thinned (each bucket's min and max kept)
const REFRESH_MS = 2000;
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#475569", "#ea580c"];

// --- small helpers -------------------------------------------------------------------------

/** An element: h("a", {href: "#/", class: "x", onclick: f}, "text", child, …). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Fetch JSON from the API; throws ApiError with the error body on a non-2xx answer. */
async function api(path, { method = "GET", body, signal } = {}) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  const res = await fetch(path, { method, body, headers, signal });
  const json = (res.headers.get("content-type") || "").includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

const fmt = {
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

const badge = (status) => h("span", { class: `badge ${status}`, "data-status": status }, status);
const jobLabel = (job) => job.name || job.id.slice(-8);
const modelLabel = (spec) => spec.model.kind + (spec.model.hidden_sizes ? ` [${spec.model.hidden_sizes}]` : "");
const section = (title, ...body) => h("section", { class: "card" }, h("h2", {}, title), ...body);

function table(id, headers, rows) {
  return h("table", { id, class: "grid" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))), h("tbody", {}, rows));
}

// --- charts --------------------------------------------------------------------------------

/** A uPlot line chart in `el`: x = iteration, one y series per entry of `lines`
 *  ({label, color, scale: "y" | "acc"}); zoom by dragging, double-click to reset. */
function lineChart(el, lines, data, { log = false, height = 320 } = {}) {
  const hasAcc = lines.some((l) => l.scale === "acc");
  const axes = [{ label: "iteration" }, { scale: "y", label: "loss", size: 60 }];
  if (hasAcc) {
    axes.push({ scale: "acc", side: 1, label: "accuracy", grid: { show: false },
      values: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)}%`) });
  }
  const opts = {
    width: Math.max(300, el.clientWidth), height,
    scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {}, acc: { range: [0, 1] } },
    series: [{ label: "iteration" }, ...lines.map((l) => ({
      label: l.label, stroke: l.color, width: 1.5, scale: l.scale || "y", spanGaps: true,
      value: l.scale === "acc" ? (u, v) => fmt.pct(v) : (u, v) => fmt.num(v, 5),
    }))],
    axes,
    cursor: { drag: { x: true, y: false } },
  };
  const chart = new uPlot(opts, logSafe(data, lines, log), el);
  chart.dataRange = [data[0][0], data[0][data[0].length - 1]];
  return chart;
}

/** On a log scale, losses that are not positive cannot be drawn: make them gaps. */
function logSafe(data, lines, log) {
  if (!log) return data;
  return data.map((col, i) => (i > 0 && lines[i - 1].scale !== "acc"
    ? col.map((v) => (v != null && v > 0 ? v : null)) : col));
}

/** New data for a chart; keeps the user's zoom when they have zoomed in. (The data arrays
 *  may be the ones the chart already holds, grown in place: compare with the range drawn.) */
function updateChart(chart, data, lines, log) {
  const [first, last] = chart.dataRange;
  const { min, max } = chart.scales.x;
  const zoomed = first != null && (min > first || max < last);
  chart.setData(logSafe(data, lines, log), !zoomed);
  chart.dataRange = [data[0][0], data[0][data[0].length - 1]];
}

function fitOnResize(getChart, el, signal) {
  const onResize = () => {
    const chart = getChart();
    if (chart) chart.setSize({ width: Math.max(300, el.clientWidth), height: chart.height });
  };
  window.addEventListener("resize", onResize, { signal });
}

/** Halve a long series, keeping each bucket's lowest and highest loss so spikes survive. */
function thin(cols) {
  const n = cols.iteration.length;
  const out = Object.fromEntries(Object.keys(cols).map((k) => [k, []]));
  const keep = (i) => { for (const k in out) out[k].push(cols[k][i]); };
  keep(0);
  for (let start = 1; start < n - 1; start += 4) {
    let lo = start, hi = start;
    for (let i = start; i < Math.min(start + 4, n - 1); i++) {
      if (cols.loss[i] < cols.loss[lo]) lo = i;
      if (cols.loss[i] > cols.loss[hi]) hi = i;
    }
    keep(Math.min(lo, hi));
    if (hi !== lo) keep(Math.max(lo, hi));
  }
  if (n > 1) keep(n - 1);
  return out;
}

// --- server-sent events ----------------------------------------------------------------------

/** Follow a Server-Sent Events stream with fetch (unlike EventSource, the first request can
 *  carry Last-Event-ID, so the stream starts where the stored history ends), reconnecting from
 *  the last id seen. `onEvent(type, data)` returns true to stop. */
async function followEvents(url, lastId, onEvent, signal) {
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { headers: lastId ? { "Last-Event-ID": lastId } : {}, signal });
      if (!res.ok) return;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", type = "", data = [], id = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const held = buffer.endsWith("\r") ? "\r" : ""; // maybe half of a CRLF
        const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
        buffer = lines.pop() + held;
        for (const line of lines) {
          if (line === "") {
            if (id !== null) lastId = id;
            if (data.length && onEvent(type || "message", JSON.parse(data.join("\n")))) return;
            type = ""; data = []; id = null;
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") type = text;
            else if (field === "data") data.push(text);
            else if (field === "id") id = text;
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      console.warn("event stream interrupted; resuming", err);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // dropped: resume from lastId
  }
}

// --- the job list ----------------------------------------------------------------------------

const listState = { status: "", selected: new Set() };

async function listView(root, signal) {
  const filter = h("select", { id: "status-filter", onchange: () => { listState.status = filter.value; refresh(); } },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === listState.status }, s || "all statuses")));
  const compare = h("button", { id: "compare-selected", onclick: () => {
    location.hash = `#/compare?ids=${[...listState.selected].join(",")}`;
  } }, "Compare selected");
  const body = h("tbody");
  root.append(h("div", { class: "toolbar" }, h("h1", {}, "Jobs"), filter, compare,
    h("a", { class: "button primary", href: "#/new" }, "New job")),
  h("table", { id: "jobs-table", class: "grid" }, h("thead", {}, h("tr", {},
    ["", "status", "name", "model", "loss", "accuracy", "created", "iterations"].map((t) => h("th", {}, t)))), body));

  async function refresh() {
    const query = listState.status ? `&status=${listState.status}` : "";
    const { jobs } = await api(`v1/jobs?limit=100${query}`, { signal });
    body.replaceChildren(...(jobs.length ? jobs.map(jobRow)
      : [h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No jobs yet. ", h("a", { href: "#/new" }, "Submit one.")))]));
    compare.disabled = listState.selected.size < 1;
  }
  function jobRow(job) {
    const box = h("input", { type: "checkbox", class: "select", "data-id": job.id,
      checked: listState.selected.has(job.id), onchange: () => {
        if (box.checked) listState.selected.add(job.id); else listState.selected.delete(job.id);
        compare.disabled = listState.selected.size < 1;
      } });
    return h("tr", { "data-id": job.id, "data-status": job.status },
      h("td", {}, box), h("td", {}, badge(job.status)),
      h("td", {}, h("a", { href: `#/jobs/${job.id}` }, jobLabel(job))),
      h("td", {}, modelLabel(job.spec)), h("td", { class: "num" }, fmt.num(job.summary.final_loss)),
      h("td", { class: "num" }, fmt.pct(job.summary.final_accuracy)),
      h("td", { title: job.created_at }, fmt.ago(job.created_at)),
      h("td", { class: "num" }, `${job.iterations_done} / ${job.spec.iterations}`));
  }
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

// --- one job -----------------------------------------------------------------------------------

async function jobView(root, signal, id) {
  const base = `v1/jobs/${id}`;
  let job = await api(base, { signal });
  const [history, stored] = await Promise.all([
    api(`${base}/metrics?format=columns&max_points=${HISTORY_POINTS}`, { signal }),
    api(`${base}/gradient-checks`, { signal }),
  ]);
  const cols = { iteration: history.columns.iteration, loss: history.columns.loss, accuracy: history.columns.accuracy };
  const checks = stored.checks;
  const el = jobLayout(job, base, () => cancel());
  root.append(el.page);

  let chart = null, lines = [], log = false;
  function draw() {
    const accuracy = cols.accuracy.some((v) => v != null); // classifiers only
    const data = [cols.iteration, cols.loss, ...(accuracy ? [cols.accuracy] : [])];
    if (chart && lines.length === data.length - 1) updateChart(chart, data, lines, log);
    else {
      if (chart) chart.destroy();
      lines = [{ label: "loss", color: PALETTE[0] }];
      if (accuracy) lines.push({ label: "accuracy", color: PALETTE[2], scale: "acc" });
      chart = lineChart(el.chart, lines, data, { log });
    }
    const n = cols.iteration.length;
    el.chart.dataset.points = n;
    el.chart.dataset.lastIteration = n ? cols.iteration[n - 1] : "";
  }
  el.log.addEventListener("change", () => { log = el.log.checked; chart.destroy(); chart = null; draw(); });
  draw();
  fitOnResize(() => chart, el.chart, signal);
  signal.addEventListener("abort", () => chart.destroy());

  function show(view) {
    job = view;
    el.status.replaceChildren(badge(job.status));
    el.status.dataset.status = job.status;
    el.cancel.hidden = TERMINAL.includes(job.status);
    el.summary.replaceChildren(...summaryItems(job, cols));
    el.error.hidden = !job.error;
    if (job.error) el.error.textContent = `${job.error.type}: ${job.error.message}`;
  }
  async function cancel() {
    el.cancel.disabled = true;
    try { show(await api(`${base}/cancel`, { method: "POST" })); } catch (err) { el.error.hidden = false; el.error.textContent = err.message; }
  }
  function finish(view) {
    show(view);
    if (view.iterations_done > 0) {
      showFit(el.fit, `${base}/plots/fit.png?v=${view.iterations_done}`);
      showParameters(el.params, base, signal);
    }
  }

  renderChecks(el.checks, checks);
  if (TERMINAL.includes(job.status)) return finish(job);
  show(job);
  const next = cols.iteration.length ? cols.iteration[cols.iteration.length - 1] + 1 : 0;
  followEvents(`${base}/events`, `p${next}-c${checks.length}`, (type, data) => {
    if (type === "status") show(data);
    else if (type === "check") { checks.push(data); renderChecks(el.checks, checks); }
    else if (type === "metrics") {
      const lastKnown = cols.iteration.length ? cols.iteration[cols.iteration.length - 1] : -1;
      data.columns.iteration.forEach((it, i) => {
        if (it <= lastKnown) return;
        for (const k in cols) cols[k].push(data.columns[k][i]);
      });
      if (cols.iteration.length > LIVE_POINTS) Object.assign(cols, thin(cols));
      draw();
      el.summary.replaceChildren(...summaryItems(job, cols));
    } else if (type === "end") {
      if (data.spec) finish(data);
      else { el.status.replaceChildren(badge(data.status)); el.cancel.hidden = true; } // deleted
      return true;
    }
    return false;
  }, signal);
}

function jobLayout(job, base, onCancel) {
  const el = {
    status: h("span", { id: "job-status" }),
    cancel: h("button", { id: "cancel", class: "danger", onclick: onCancel }, "Cancel"),
    summary: h("dl", { id: "summary", class: "summary" }),
    error: h("div", { id: "job-error", class: "error", hidden: true }),
    chart: h("div", { id: "loss-chart", class: "chart", "data-points": 0 }),
    log: h("input", { type: "checkbox", id: "log-scale" }),
    fit: h("figure", { id: "fit", class: "fit", hidden: true }),
    checks: h("tbody"),
    params: h("div", { id: "parameters" }, h("p", { class: "muted" }, "Shown when the job has finished.")),
  };
  const links = [["loss.png", "plots/loss.png"], ["loss.svg", "plots/loss.svg"],
    ["checks.png", "plots/gradient-checks.png"], ["metrics.csv", "metrics?format=csv"], ["json", ""]];
  el.page = h("div", { class: "job", "data-id": job.id },
    h("div", { class: "toolbar" }, h("h1", {}, jobLabel(job)), el.status, el.cancel,
      h("span", { class: "spacer" }),
      h("span", { class: "links" }, links.map(([label, path]) =>
        h("a", { href: path ? `${base}/${path}` : base, target: "_blank" }, label)))),
    h("p", { class: "muted" }, `${modelLabel(job.spec)} · ${job.spec.data.kind} · ${job.spec.optimizer.kind} · `,
      h("code", {}, job.id), job.sweep_id ? [" · ", h("a", { href: `#/compare?sweep=${job.sweep_id}` }, "its sweep")] : null),
    el.summary, el.error,
    h("div", { class: "row" },
      section("Loss", el.chart, h("label", { class: "muted" }, el.log, " log scale · drag to zoom, double-click to reset")),
      el.fit),
    section("Gradient checks", table("checks-table",
      ["iteration", "reference", "tensor", "max rel. error", "rtol", "result", "kinks", "checked"], [el.checks])),
    h("div", { class: "row" },
      section("Spec", h("pre", { id: "spec" }, JSON.stringify(job.spec, null, 2))),
      section("Final parameters", el.params)));
  return el;
}

function summaryItems(job, cols) {
  const n = cols.iteration.length;
  const running = !TERMINAL.includes(job.status);
  const done = running && n ? cols.iteration[n - 1] + 1 : job.iterations_done;
  const item = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  const passed = job.gradient_checks_passed;
  return [
    item("iterations", `${done} / ${job.spec.iterations}`),
    item(running ? "loss (latest)" : "final loss", fmt.num(running && n ? cols.loss[n - 1] : job.summary.final_loss, 5)),
    item("best loss", job.summary.best_loss == null ? "–" : `${fmt.num(job.summary.best_loss, 5)} @ ${job.summary.best_iteration}`),
    item("accuracy", fmt.pct(running && n ? cols.accuracy[n - 1] : job.summary.final_accuracy)),
    item("gradient checks", passed == null ? "–" : h("span", { class: passed ? "pass" : "fail" }, passed ? "passed" : "failed")),
    item("created", h("span", { title: job.created_at }, fmt.ago(job.created_at))),
  ].flat();
}

/** The fit plot, hidden when it does not apply (409) or is not there (404). */
function showFit(figure, src) {
  const img = h("img", { id: "fit-plot", alt: "decision regions / fitted line", src });
  img.addEventListener("load", () => { figure.hidden = false; });
  img.addEventListener("error", () => { figure.hidden = true; });
  figure.replaceChildren(h("h2", {}, "Fit"), img, h("figcaption", { class: "muted" }, "the final model on its training data"));
}

function renderChecks(tbody, checks) {
  const rows = [];
  for (const check of checks) {
    const tensors = Object.entries(check.parameters || {});
    const head = [h("td", { rowspan: Math.max(1, tensors.length) }, check.iteration),
      h("td", { rowspan: Math.max(1, tensors.length) }, check.reference)];
    if (!tensors.length) {
      rows.push(h("tr", { "data-passed": String(check.passed) }, head,
        h("td", { colspan: 6, class: "muted" }, check.available === false ? `unavailable: ${check.reason}` : "nothing to check")));
    }
    tensors.forEach(([name, t], i) => {
      const ok = t.max_relative_error <= check.rtol;
      rows.push(h("tr", { "data-passed": String(ok), "data-tensor": name }, i === 0 ? head : null,
        h("td", {}, h("code", {}, name)), h("td", { class: "num" }, fmt.err(t.max_relative_error)),
        h("td", { class: "num" }, fmt.err(check.rtol)),
        h("td", {}, h("span", { class: ok ? "pass" : "fail" }, ok ? "pass" : "fail")),
        h("td", { class: "num", title: t.kinks.count ? `at ${JSON.stringify(t.kinks.indices.slice(0, 5))}` : "" }, t.kinks.count),
        h("td", { class: "num" }, `${t.checked} / ${t.total}`)));
    });
  }
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No gradient checks yet.")));
  tbody.replaceChildren(...rows);
}

async function showParameters(box, base, signal) {
  let params;
  try { params = await api(`${base}/parameters`, { signal }); } catch (err) { box.replaceChildren(h("p", { class: "muted" }, err.message)); return; }
  const rows = Object.entries(params.shapes).map(([name, shape]) => {
    const values = [params.parameters[name]].flat(Infinity);
    const more = h("details", {}, h("summary", {}, `all ${values.length}`));
    more.addEventListener("toggle", () => {
      if (more.open && more.children.length === 1) {
        more.append(h("pre", {}, values.slice(0, 5000).map((v) => fmt.num(v)).join(" ") + (values.length > 5000 ? " …" : "")));
      }
    }, { once: true });
    return h("tr", {}, h("td", {}, h("code", {}, name)), h("td", {}, `(${shape.join(", ")})`),
      h("td", { class: "values" }, values.slice(0, 6).map((v) => fmt.num(v)).join(", ") + (values.length > 6 ? ", …" : "")),
      h("td", {}, values.length > 6 ? more : null));
  });
  box.replaceChildren(h("p", { class: "muted" }, `after iteration ${params.iteration}`),
    table("params-table", ["name", "shape", "values", ""], rows));
}

// --- compare -----------------------------------------------------------------------------------

async function compareView(root, signal, query = "") {
  const params = new URLSearchParams(query);
  const sweepId = params.get("sweep");
  let sweep = null, ids = (params.get("ids") || "").split(",").filter(Boolean);
  if (sweepId) {
    sweep = await api(`v1/sweeps/${sweepId}?sort=final_loss`, { signal });
    ids = sweep.jobs.map((j) => j.id);
  }
  const chartEl = h("div", { id: "compare-chart", class: "chart", "data-series": 0 });
  const plotLink = `v1/plots/compare.png?${sweepId ? `sweep=${sweepId}` : `ids=${ids.join(",")}`}`;
  const tableBox = h("div");
  root.append(h("div", { class: "toolbar" }, h("h1", {}, sweep ? `Sweep ${sweep.name || sweep.id}` : "Compare"),
    h("span", { class: "spacer" }), h("a", { href: plotLink, target: "_blank" }, "compare.png")),
  section("Loss", chartEl, h("p", { class: "muted" }, "drag to zoom, double-click to reset")), tableBox);
  if (!ids.length) { chartEl.replaceWith(h("p", { class: "empty" }, "Select jobs on the list to compare them.")); return; }

  let chart = null, lines = [];
  async function load() {
    const jobs = await Promise.all(ids.map((id) => api(`v1/jobs/${id}`, { signal })));
    const metrics = await Promise.all(ids.map((id) => api(`v1/jobs/${id}/metrics?format=columns&max_points=1000`, { signal })));
    const data = uPlot.join(metrics.map((m) => [m.columns.iteration, m.columns.loss]));
    const names = jobs.map(jobLabel);
    lines = jobs.map((job, i) => ({ label: names.indexOf(names[i]) === i ? names[i] : `${names[i]} (${job.id.slice(-6)})`,
      color: PALETTE[i % PALETTE.length] }));
    if (chart) updateChart(chart, data, lines, false);
    else chart = lineChart(chartEl, lines, data, { height: 380 });
    chartEl.dataset.series = lines.length;
    tableBox.replaceChildren(sweep ? sweepTable(sweep, jobs) : jobsTable(jobs));
    return jobs.some((j) => !TERMINAL.includes(j.status));
  }
  let live = await load();
  fitOnResize(() => chart, chartEl, signal);
  const timer = setInterval(async () => {
    if (!live || document.hidden) return;
    if (sweep) sweep = await api(`v1/sweeps/${sweepId}?sort=final_loss`, { signal }).catch(() => sweep);
    live = await load().catch(() => live);
  }, REFRESH_MS);
  signal.addEventListener("abort", () => { clearInterval(timer); chart.destroy(); });
}

function jobsTable(jobs) {
  return section("Jobs", table("compare-table", ["", "name", "status", "model", "final loss", "accuracy", "iterations"],
    jobs.map((job, i) => h("tr", { "data-id": job.id }, h("td", {}, h("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}` })),
      h("td", {}, h("a", { href: `#/jobs/${job.id}` }, jobLabel(job))), h("td", {}, badge(job.status)),
      h("td", {}, modelLabel(job.spec)), h("td", { class: "num" }, fmt.num(job.summary.final_loss, 5)),
      h("td", { class: "num" }, fmt.pct(job.summary.final_accuracy)), h("td", { class: "num" }, `${job.iterations_done} / ${job.spec.iterations}`)))));
}

function sweepTable(sweep, jobs) {
  const color = Object.fromEntries(jobs.map((j, i) => [j.id, PALETTE[i % PALETTE.length]]));
  const keys = Object.keys(sweep.grid);
  return section("Sweep, best final loss first", table("sweep-table",
    ["", "name", "status", ...keys, "final loss", "accuracy", "best loss", "iterations"],
    sweep.jobs.map((row) => h("tr", { "data-id": row.id },
      h("td", {}, h("span", { class: "swatch", style: `background:${color[row.id]}` })),
      h("td", {}, h("a", { href: `#/jobs/${row.id}` }, row.name || row.id)), h("td", {}, badge(row.status)),
      keys.map((k) => h("td", { class: "num" }, JSON.stringify(row.overrides[k]))),
      h("td", { class: "num" }, fmt.num(row.final_loss, 5)), h("td", { class: "num" }, fmt.pct(row.final_accuracy)),
      h("td", { class: "num" }, fmt.num(row.best_loss, 5)), h("td", { class: "num" }, row.iterations_done)))));
}

// --- submit --------------------------------------------------------------------------------------

/** The form's fields: each edits one path of the JSON spec (the JSON is what is posted). */
const FIELDS = [
  { path: "name", label: "name", type: "text" },
  { path: "iterations", label: "iterations", type: "int" },
  { path: "optimizer.kind", label: "optimizer", options: ["gd", "sgd", "newton"] },
  { path: "optimizer.learning_rate", label: "learning rate", type: "float" },
  { path: "optimizer.momentum", label: "momentum", type: "float", when: (s) => s.optimizer.kind !== "newton" },
  { path: "optimizer.batch_size", label: "batch size", type: "int", when: (s) => s.optimizer.kind === "sgd" },
  { path: "l2", label: "L2 strength", type: "float" },
  { path: "model.hidden_sizes", label: "hidden sizes", type: "ints", when: (s) => s.model.kind === "mlp" },
  { path: "model.activation", label: "activation", options: ["relu", "tanh", "sigmoid"], when: (s) => s.model.kind === "mlp" },
  { path: "gradient_check.every", label: "check gradients every", type: "int" },
];

const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

function setPath(obj, path, value) {
  const keys = path.split(".");
  const parent = keys.slice(0, -1).reduce((o, k) => (o[k] ??= {}), obj);
  if (value === undefined) delete parent[keys[keys.length - 1]];
  else parent[keys[keys.length - 1]] = value;
}

function parseField(field, text) {
  if (field.options || field.type === "text") return text === "" ? undefined : text;
  if (text.trim() === "") return undefined; // the server's default
  if (field.type === "ints") return text.split(/[\s,]+/).filter(Boolean).map(Number);
  return Number(text);
}

async function newView(root, signal) {
  const examples = await api("v1/jobs/examples", { signal });
  const names = Object.keys(examples);
  const pick = h("select", { id: "example" }, names.map((n) => h("option", { value: n }, examples[n].summary)));
  const json = h("textarea", { id: "spec-json", spellcheck: "false", rows: 24 });
  const fields = h("div", { class: "fields" });
  const errors = h("ul", { id: "form-errors", class: "error", hidden: true });
  const submit = h("button", { id: "submit", class: "primary", type: "submit" }, "Submit");
  const spec = () => JSON.parse(json.value);

  function renderFields() {
    let s;
    try { s = spec(); } catch { return; } // mid-edit JSON: leave the fields as they are
    fields.replaceChildren(...FIELDS.filter((f) => getPath(s, f.path.split(".")[0]) !== undefined && (!f.when || f.when(s)))
      .map((f) => {
        const value = getPath(s, f.path);
        const shown = Array.isArray(value) ? value.join(", ") : value ?? "";
        const input = f.options
          ? h("select", { "data-path": f.path }, f.options.map((o) => h("option", { value: o, selected: o === value }, o)))
          : h("input", { "data-path": f.path, value: shown, type: f.type === "text" || f.type === "ints" ? "text" : "number",
            step: f.type === "float" ? "any" : "1", placeholder: "default" });
        input.addEventListener("change", () => edit(f, input.value));
        return h("label", {}, h("span", {}, f.label), input);
      }));
  }
  function edit(field, text) {
    const s = spec();
    if (field.path === "optimizer.kind") s.optimizer = { kind: text, learning_rate: s.optimizer.learning_rate };
    else setPath(s, field.path, parseField(field, text));
    json.value = JSON.stringify(s, null, 2);
    renderFields();
  }
  function load() {
    json.value = JSON.stringify(examples[pick.value].value, null, 2);
    errors.hidden = true;
    renderFields();
  }
  function showProblems(problems) {
    errors.replaceChildren(...problems.map((p) => h("li", {}, p)));
    errors.hidden = false;
  }
  async function send(event) {
    event.preventDefault();
    let body;
    try { body = JSON.stringify(spec()); } catch (err) { return showProblems([`JSON: ${err.message}`]); }
    submit.disabled = true;
    try {
      const job = await api("v1/jobs", { method: "POST", body, signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      const detail = err.body && err.body.detail;
      showProblems(Array.isArray(detail) ? detail.map((d) => `${d.field || "spec"}: ${d.msg}`) : [err.message]);
    } finally { submit.disabled = false; }
  }
  pick.addEventListener("change", load);
  json.addEventListener("input", renderFields);
  const pre = names.find((n) => n === new URLSearchParams(location.hash.split("?")[1] || "").get("example"));
  if (pre) pick.value = pre;
  load();
  root.append(h("h1", {}, "New job"), h("form", { id: "new-job", class: "new-job", onsubmit: send },
    h("div", { class: "card" }, h("label", {}, h("span", {}, "exercise"), pick), fields, errors, submit),
    h("div", { class: "card" }, h("h2", {}, "Spec (JSON: what is posted; edit anything)"), json)));
}

// --- routing -------------------------------------------------------------------------------------

const ROUTES = [
  [/^#?\/?$/, listView, "list"],
  [/^#\/jobs\/([^/?]+)$/, jobView, "list"],
  [/^#\/compare(?:\?(.*))?$/, compareView, "list"],
  [/^#\/new(?:\?(.*))?$/, newView, "new"],
];
let current = null;

async function route() {
  if (current) current.abort(); // stops the previous view's timers, streams and charts
  const ctl = new AbortController();
  current = ctl;
  const root = h("div", { class: "page" });
  document.getElementById("view").replaceChildren(root);
  const match = ROUTES.map(([re, view, nav]) => [location.hash.match(re), view, nav]).find(([m]) => m);
  if (!match) { root.append(h("p", { class: "empty" }, "No such page. ", h("a", { href: "#/" }, "Back to the jobs."))); return; }
  const [m, view, nav] = match;
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
  try {
    await view(root, ctl.signal, ...m.slice(1));
  } catch (err) {
    if (!ctl.signal.aborted) root.append(h("div", { class: "error" }, err.message));
  }
}

window.addEventListener("hashchange", route);
route();
