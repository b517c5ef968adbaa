/* #/jobs/<id> — one job: its loss chart drawn from the stored history and then live from the
 * event stream, status, fit plot, gradient checks, spec and final parameters. */

import { chartHints, chartPanel, thin } from "./charts.js";
import { followEvents } from "./events.js";
import {
  PALETTE, api, badge, blobUrl, catalog, fileLink, fmt, h, jobLabel, modelLabel, num, section, table,
} from "./lib.js";

const HISTORY_POINTS = 5000; // a long run's stored history is downsampled to this many points
const LIVE_POINTS = 50000; // past this, the points drawn are thinned (each bucket's min and max kept)

export async function jobView(root, signal, id) {
  const base = `v1/jobs/${id}`;
  const { statuses } = await catalog();
  const active = statuses.all.filter((s) => !statuses.terminal.includes(s)); // those with a Cancel button
  let job = await api(base, { signal });
  const [history, stored] = await Promise.all([
    api(`${base}/metrics?format=columns&max_points=${HISTORY_POINTS}`, { signal }),
    api(`${base}/gradient-checks`, { signal }),
  ]);
  const { iteration, loss, accuracy } = history.columns;
  const cols = { iteration, loss, accuracy };
  const checks = stored.checks;
  const el = layout(job, base, () => cancel());
  root.append(el.page);

  const panel = chartPanel(el.chart, el.log, signal);
  function draw() {
    const classifier = cols.accuracy.some((v) => v != null);
    const lines = [{ label: "loss", color: PALETTE[0] }];
    if (classifier) lines.push({ label: "accuracy", color: PALETTE[2], scale: "acc" });
    panel.draw(lines, [cols.iteration, cols.loss, ...(classifier ? [cols.accuracy] : [])]);
    const n = cols.iteration.length;
    el.chart.dataset.points = n;
    el.chart.dataset.lastIteration = n ? cols.iteration[n - 1] : "";
    el.summary.replaceChildren(...summary(job, cols, statuses));
  }
  function show(view) {
    job = view;
    el.status.replaceChildren(badge(job.status));
    el.status.dataset.status = job.status;
    el.cancel.hidden = !active.includes(job.status);
    el.cancel.disabled = job.cancel_requested;
    el.cancel.textContent = job.cancel_requested ? "Cancelling…" : "Cancel";
    el.summary.replaceChildren(...summary(job, cols, statuses));
    el.error.hidden = !job.error;
    if (job.error) el.error.textContent = `${job.error.type}: ${job.error.message}`;
  }
  async function cancel() {
    el.cancel.disabled = true;
    try {
      show(await api(`${base}/cancel`, { method: "POST" }));
    } catch (err) {
      el.error.hidden = false;
      el.error.textContent = err.message;
    }
  }
  function finish(view) {
    show(view);
    showReference(el.reference, view, signal);
    el.fit.hidden = el.trajectory.hidden = view.iterations_done === 0;
    if (view.iterations_done > 0) {
      showFit(el.fit, `${base}/plots/fit.png?v=${view.iterations_done}`, signal);
      showFit(el.trajectory, `${base}/plots/trajectory.png?v=${view.iterations_done}`, signal, TRAJECTORY);
      showParameters(el.params, base, signal);
    }
  }
  function append(columns) {
    const n = cols.iteration.length;
    const known = n ? cols.iteration[n - 1] : -1;
    columns.iteration.forEach((it, i) => {
      if (it > known) for (const k in cols) cols[k].push(columns[k][i]);
    });
    if (cols.iteration.length > LIVE_POINTS) Object.assign(cols, thin(cols));
    draw();
  }

  draw();
  renderChecks(el.checks, checks);
  if (statuses.terminal.includes(job.status)) return finish(job);
  show(job);
  showReference(el.reference, job, signal);
  // The stream's cursor (its event ids): the next iteration, and how many checks were seen.
  const next = cols.iteration.length ? cols.iteration[cols.iteration.length - 1] + 1 : 0;
  followEvents(`${base}/events`, `p${next}-c${checks.length}`, (type, data) => {
    if (type === "status") show(data);
    else if (type === "metrics") append(data.columns);
    else if (type === "check") {
      checks.push(data);
      renderChecks(el.checks, checks);
    } else if (type === "end") {
      if (data.spec) finish(data);
      else show({ ...job, status: data.status }); // deleted while we watched
      return true;
    }
    return false;
  }, signal);
}

function layout(job, base, onCancel) {
  const el = {
    status: h("span", { id: "job-status" }),
    cancel: h("button", { id: "cancel", class: "danger", onclick: onCancel }, "Cancel"),
    summary: h("dl", { id: "summary", class: "summary" }),
    error: h("div", { id: "job-error", class: "error", hidden: true }),
    chart: h("div", { id: "loss-chart", class: "chart", "data-points": 0 }),
    log: h("input", { type: "checkbox", id: "log-scale" }),
    fit: h("figure", { id: "fit", class: "fit" }, h("h2", {}, "Fit"),
      h("p", { class: "muted" }, "The final model's fit is drawn when the job finishes.")),
    trajectory: h("figure", { id: "trajectory", class: "fit", hidden: true }),
    checks: h("tbody"),
    params: h("div", { id: "parameters" }, h("p", { class: "muted" }, "Shown when the job has finished.")),
    reference: h("figure", { id: "reference", class: "fit", hidden: !job.reference }),
  };
  const links = [["loss.png", "/plots/loss.png"], ["loss.svg", "/plots/loss.svg"],
    ["checks.png", "/plots/gradient-checks.png"], ["trajectory.png", "/plots/trajectory.png"],
    ["metrics.csv", "/metrics?format=csv"], ["json", ""]];
  const spec = job.spec;
  const sweep = job.sweep_id ? [" · ", h("a", { href: `#/compare?sweep=${job.sweep_id}` }, "its sweep")] : null;
  const checkHeaders = ["iteration", "reference", "tensor", "max rel. error", "rtol", "result", "kinks",
    "checked"];
  el.page = h("div", { class: "job", "data-id": job.id },
    h("div", { class: "toolbar" }, h("h1", {}, jobLabel(job)), el.status, el.cancel,
      h("span", { class: "spacer" }),
      h("a", { class: "button", href: `#/new?from=${job.id}` }, "Edit & resubmit"),
      h("span", { class: "links" },
        links.map(([label, path]) => fileLink(label, base + path, `${job.id}-${label}`)))),
    h("p", { class: "muted" },
      spec.model ? `${modelLabel(spec)} · ${spec.data.kind} · ${spec.optimizer.kind} · ` : "external run · ",
      h("code", {}, job.id), sweep),
    el.summary,
    el.error,
    h("div", { class: "row" }, section("Loss", el.chart, chartHints(el.log)), el.fit),
    el.reference,
    h("div", { class: "row" }, el.trajectory),
    section("Gradient checks", table("checks-table", checkHeaders, el.checks)),
    h("div", { class: "row" },
      section("Data", dataSummary(job.data)),
      section("Spec", h("pre", { id: "spec" }, JSON.stringify(spec, null, 2))),
      section("Final parameters", el.params)));
  return el;
}

/** What the job trains on: its summary (never the arrays) and a link to fetch them. */
function dataSummary(data) {
  if (!data) return h("p", { id: "data-summary", class: "muted" }, "No recipe: the points are your own loop's.");
  const classes = data.classes === null ? "real-valued targets" : `${data.classes} classes`;
  const rows = [["kind", data.kind], ["shape", `${data.rows} rows × ${data.features} features`],
    ["targets", classes]];
  if (data.sha256) rows.push(["sha256", h("code", {}, data.sha256)]);
  return h("div", { id: "data-summary" },
    h("dl", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    data.sha256
      ? h("a", { href: data.href.replace(/^\//, ""), target: "_blank" }, "the arrays (JSON)")
      : h("p", { class: "muted" }, "Generated from the spec's seeded options; not stored."));
}

/** The lowest loss among the points drawn, and its iteration. */
function bestSoFar(cols) {
  let best = -1;
  cols.loss.forEach((v, i) => {
    if (v != null && (best < 0 || v < cols.loss[best])) best = i;
  });
  return best < 0 ? [null, null] : [cols.loss[best], cols.iteration[best]];
}

/** Figures for the header: from the points while running, from the job's summary after. */
function summary(job, cols, statuses) {
  const n = cols.iteration.length;
  const live = !statuses.terminal.includes(job.status) && n > 0;
  const s = job.summary;
  const [best, bestAt] = live ? bestSoFar(cols) : [s.best_loss, s.best_iteration];
  const passed = job.gradient_checks_passed;
  const item = (label, value) => [h("dt", {}, label), h("dd", {}, value)];
  return [
    item("iterations", `${live ? cols.iteration[n - 1] + 1 : job.iterations_done}`
      + (job.spec.iterations ? ` / ${job.spec.iterations}` : "")),
    item(live ? "loss (latest)" : "final loss", fmt.num(live ? cols.loss[n - 1] : s.final_loss, 5)),
    item("best loss", best == null ? "–" : `${fmt.num(best, 5)} @ ${bestAt}`),
    item("accuracy", fmt.pct(live ? cols.accuracy[n - 1] : s.final_accuracy)),
    item("gradient checks", passed == null ? "–"
      : h("span", { class: passed ? "pass" : "fail" }, passed ? "passed" : "failed")),
    item("created", h("span", { title: job.created_at }, fmt.ago(job.created_at))),
  ].flat();
}

/** A linked job's loss beside its recipe's shared reference run: the overlay plot and where
 *  the two first differ by more than 1e-6 relative. */
async function showReference(figure, job, signal) {
  if (!job.reference) return;
  let view, src;
  try {
    view = await api(job.reference.href.replace(/^\//, ""), { signal });
    src = await blobUrl(`v1/jobs/${job.id}/plots/loss.svg?v=${job.iterations_done}-${view.iterations_done}`, signal);
  } catch {
    return;
  }
  const d = view.first_divergence;
  const verdict = d
    ? `first differs at iteration ${d.iteration}: yours ${fmt.num(d.yours, 6)}, reference ${fmt.num(d.reference, 6)}`
    : `agrees with the reference on all ${view.compared} iterations compared`;
  signal.addEventListener("abort", () => URL.revokeObjectURL(src));
  figure.replaceChildren(h("h2", {}, "Yours and the reference"),
    h("img", { id: "reference-plot", alt: "your loss and the reference run's", src }),
    h("figcaption", { id: "reference-verdict", class: d ? "fail" : "pass",
      "data-divergence": d ? d.iteration : "" }, `${verdict} (reference run ${view.status})`));
}

/** The fit plot, or the trajectory plot (fetched with the token); hidden when it does not
 *  apply to the job (409) or is not served (404). */
const FIT = { id: "fit-plot", title: "Fit", alt: "decision regions or fitted line",
  caption: "the final model on its training data" };
const TRAJECTORY = { id: "trajectory-plot", title: "The path of descent",
  alt: "loss surface contours with the parameters' path",
  caption: "the loss surface and the parameters' path across it (● start, ★ last)" };

async function showFit(figure, path, signal, what = FIT) {
  let src;
  try {
    src = await blobUrl(path, signal);
  } catch {
    figure.hidden = true;
    return;
  }
  const img = h("img", { id: what.id, alt: what.alt, src });
  img.addEventListener("error", () => { figure.hidden = true; });
  signal.addEventListener("abort", () => URL.revokeObjectURL(src));
  figure.hidden = false;
  figure.replaceChildren(h("h2", {}, what.title), img,
    h("figcaption", { class: "muted" }, what.caption));
}

/** One row per check and parameter tensor: its worst relative error against the tolerance. */
function renderChecks(tbody, checks) {
  const rows = checks.flatMap((check) => {
    const tensors = Object.entries(check.parameters || {});
    const span = { rowspan: Math.max(1, tensors.length) };
    const head = [h("td", span, check.iteration), h("td", span, check.reference)];
    if (!tensors.length) {
      const why = check.available === false ? `unavailable: ${check.reason}` : "nothing to check";
      const note = h("td", { colspan: 6, class: "muted" }, why);
      return [h("tr", { "data-passed": String(check.passed) }, head, note)];
    }
    return tensors.map(([name, t], i) => {
      const ok = t.max_relative_error <= check.rtol;
      const at = JSON.stringify(t.kinks.indices.slice(0, 5));
      const kinks = t.kinks.count ? `nondifferentiable points at ${at}` : "";
      return h("tr", { "data-passed": String(ok), "data-tensor": name }, i === 0 ? head : null,
        h("td", {}, h("code", {}, name)),
        num(fmt.err(t.max_relative_error)),
        num(fmt.err(check.rtol)),
        h("td", {}, h("span", { class: ok ? "pass" : "fail" }, ok ? "pass" : "fail")),
        h("td", { class: "num", title: kinks }, t.kinks.count),
        num(`${t.checked} / ${t.total}`));
    });
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No gradient checks yet.")));
  tbody.replaceChildren(...rows);
}

/** Each parameter tensor's shape and first values; all of them (up to a cap) on request. */
async function showParameters(box, base, signal) {
  let params;
  try {
    params = await api(`${base}/parameters`, { signal });
  } catch (err) {
    if (!signal.aborted) box.replaceChildren(h("p", { class: "muted" }, err.message));
    return;
  }
  const list = (values, cap, sep) =>
    values.slice(0, cap).map((v) => fmt.num(v)).join(sep) + (values.length > cap ? `${sep}…` : "");
  const rows = Object.entries(params.shapes).map(([name, shape]) => {
    const values = [params.parameters[name]].flat(Infinity);
    const all = h("details", {}, h("summary", {}, `all ${values.length}`));
    all.addEventListener("toggle", () => all.append(h("pre", {}, list(values, 5000, " "))), { once: true });
    return h("tr", {}, h("td", {}, h("code", {}, name)), h("td", {}, `(${shape.join(", ")})`),
      h("td", { class: "values" }, list(values, 6, ", ")), h("td", {}, values.length > 6 ? all : null));
  });
  box.replaceChildren(h("p", { class: "muted" }, `after iteration ${params.iteration}`),
    table("params-table", ["name", "shape", "values", ""], rows));
}
