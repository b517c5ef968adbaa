/* #/ — the jobs, newest first, refreshed every few seconds; tick some to compare them. */

import { REFRESH_MS, api, badge, catalog, fmt, h, jobLink, modelLabel, num, progress, table } from "./lib.js";

const state = { status: "", selected: new Set() }; // kept while the user visits other pages

export async function listView(root, signal) {
  const { statuses } = await catalog();
  const filter = h("select", { id: "status-filter", onchange: () => refresh() },
    h("option", { value: "" }, "all statuses"),
    statuses.all.map((s) => h("option", { value: s, selected: s === state.status }, s)));
  const compare = h("button", { id: "compare-selected", onclick: () => {
    location.hash = `#/compare?ids=${[...state.selected].join(",")}`;
  } }, "Compare selected");
  const body = h("tbody");
  const note = h("p", { class: "muted" });
  const headers = ["", "status", "name", "model", "loss", "accuracy", "created", "iterations"];
  root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Jobs"), filter, compare,
      h("a", { class: "button primary", href: "#/new" }, "New job")),
    table("jobs-table", headers, body), note);

  const select = (id, on) => {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    compare.disabled = state.selected.size === 0;
  };
  async function refresh() {
    state.status = filter.value;
    const query = state.status ? `&status=${state.status}` : "";
    const { jobs, next_cursor: more } = await api(`v1/jobs?limit=100${query}`, { signal });
    note.textContent = more ? "The newest 100 jobs." : "";
    body.replaceChildren(...(jobs.length ? jobs.map((job) => jobRow(job, select)) : [emptyRow()]));
    compare.disabled = state.selected.size === 0;
  }
  await refresh();
  const timer = setInterval(() => {
    if (!document.hidden) refresh().catch(() => {});
  }, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

function jobRow(job, select) {
  const box = h("input", { type: "checkbox", class: "select", "data-id": job.id,
    checked: state.selected.has(job.id), onchange: () => select(job.id, box.checked) });
  const sweep = job.sweep_id
    ? h("a", { class: "tag", href: `#/compare?sweep=${job.sweep_id}`, title: "compare its sweep" }, "sweep")
    : null;
  return h("tr", { "data-id": job.id, "data-status": job.status },
    h("td", {}, box),
    h("td", {}, badge(job.status)),
    h("td", {}, jobLink(job), sweep),
    h("td", {}, modelLabel(job.spec)),
    num(fmt.num(job.summary.final_loss)),
    num(fmt.pct(job.summary.final_accuracy)),
    h("td", { title: job.created_at }, fmt.ago(job.created_at)),
    num(progress(job.iterations_done, job.spec.iterations)));
}

function emptyRow() {
  const text = state.status
    ? `No ${state.status} jobs.`
    : ["No jobs yet. ", h("a", { href: "#/new" }, "Submit one.")];
  return h("tr", {}, h("td", { colspan: 8, class: "empty" }, text));
}
