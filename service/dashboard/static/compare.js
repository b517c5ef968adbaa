/* #/compare?ids=a,b,c or #/compare?sweep=<id> — loss curves overlaid, one series per job,
 * refreshed while any of them still runs; for a sweep, its jobs sorted by final loss. */

import { chartHints, chartPanel } from "./charts.js";
import {
  PALETTE, REFRESH_MS, api, badge, catalog, fileLink, fmt, h, jobLabel, jobLink, modelLabel, num, progress,
  section, swatch, table,
} from "./lib.js";

const MAX_POINTS = 1000; // per job

export async function compareView(root, signal, query = "") {
  const { terminal } = (await catalog()).statuses;
  const params = new URLSearchParams(query);
  const sweepId = params.get("sweep");
  const getSweep = () => api(`v1/sweeps/${sweepId}?sort=final_loss`, { signal });
  let sweep = sweepId ? await getSweep() : null;
  const ids = sweep ? sweep.jobs.map((j) => j.id) : (params.get("ids") || "").split(",").filter(Boolean);

  const chartEl = h("div", { id: "compare-chart", class: "chart", "data-series": 0 });
  const logBox = h("input", { type: "checkbox", id: "log-scale" });
  const tableBox = h("div");
  const png = `v1/plots/compare.png?${sweepId ? `sweep=${sweepId}` : `ids=${ids.join(",")}`}`;
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, sweep ? `Sweep ${sweep.name || sweep.id}` : "Compare"),
      h("span", { class: "spacer" }), fileLink("compare.png", png, "compare.png")),
    section("Loss", chartEl, chartHints(logBox)), tableBox);
  if (!ids.length) {
    chartEl.replaceWith(h("p", { class: "empty" }, "Tick jobs on the list to compare them."));
    return;
  }

  const panel = chartPanel(chartEl, logBox, signal, 380);
  const colors = ids.map((_, i) => PALETTE[i % PALETTE.length]);
  async function load() {
    const get = (path) => Promise.all(ids.map((id) => api(`v1/jobs/${id}${path}`, { signal })));
    const [jobs, metrics] = await Promise.all([get(""), get(`/metrics?format=columns&max_points=${MAX_POINTS}`)]);
    const data = uPlot.join(metrics.map((m) => [m.columns.iteration, m.columns.loss]));
    panel.draw(legend(jobs).map((label, i) => ({ label, color: colors[i] })), data);
    chartEl.dataset.series = jobs.length;
    tableBox.replaceChildren(sweep ? sweepTable(sweep, ids, colors) : jobsTable(jobs, colors));
    return jobs.some((j) => !terminal.includes(j.status));
  }
  let live = await load();
  const timer = setInterval(async () => {
    if (!live || document.hidden) return;
    if (sweep) sweep = await getSweep().catch(() => sweep);
    live = await load().catch(() => live);
  }, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

/** The jobs' names, told apart by their ids where two share one. */
function legend(jobs) {
  const names = jobs.map(jobLabel);
  return names.map((name, i) => (names.indexOf(name) === i ? name : `${name} (${jobs[i].id.slice(-6)})`));
}

function jobsTable(jobs, colors) {
  const rows = jobs.map((job, i) => h("tr", { "data-id": job.id },
    h("td", {}, swatch(colors[i])),
    h("td", {}, jobLink(job)),
    h("td", {}, badge(job.status)),
    h("td", {}, modelLabel(job.spec)),
    num(fmt.num(job.summary.final_loss, 5)),
    num(fmt.pct(job.summary.final_accuracy)),
    num(progress(job.iterations_done, job.spec.iterations))));
  const headers = ["", "name", "status", "model", "final loss", "accuracy", "iterations"];
  return section("Jobs", table("compare-table", headers, rows));
}

function sweepTable(sweep, ids, colors) {
  const keys = Object.keys(sweep.grid);
  const rows = sweep.jobs.map((row) => h("tr", { "data-id": row.id },
    h("td", {}, swatch(colors[ids.indexOf(row.id)])),
    h("td", {}, jobLink(row)),
    h("td", {}, badge(row.status)),
    keys.map((k) => num(JSON.stringify(row.overrides[k]))),
    num(fmt.num(row.final_loss, 5)),
    num(fmt.pct(row.final_accuracy)),
    num(fmt.num(row.best_loss, 5)),
    num(row.iterations_done)));
  const headers = ["", "name", "status", ...keys, "final loss", "accuracy", "best loss", "iterations"];
  return section("Sweep, best final loss first", table("sweep-table", headers, rows, keys));
}
