/* #/new — submit a seed exercise (or ?from=<job id>: that job's spec) with edited
 * hyperparameters. The JSON is what is posted; the fields are a convenient view of it. */

import { api, h, jobLabel } from "./lib.js";

/** Each field edits one path of the JSON spec; `when` says for which specs it applies. */
const FIELDS = [
  { path: "name", label: "name", type: "text" },
  { path: "iterations", label: "iterations", type: "int" },
  { path: "optimizer.kind", label: "optimizer", options: ["gd", "sgd", "newton"] },
  { path: "optimizer.learning_rate", label: "learning rate", type: "float" },
  { path: "optimizer.momentum", label: "momentum", type: "float",
    when: (s) => s.optimizer?.kind !== "newton" },
  { path: "optimizer.batch_size", label: "batch size", type: "int", when: (s) => s.optimizer?.kind === "sgd" },
  { path: "l2", label: "L2 strength", type: "float" },
  { path: "model.hidden_sizes", label: "hidden sizes", type: "ints", when: (s) => s.model?.kind === "mlp" },
  { path: "model.activation", label: "activation", options: ["relu", "tanh", "sigmoid"],
    when: (s) => s.model?.kind === "mlp" },
  { path: "gradient_check.every", label: "check gradients every", type: "int" },
];

const getPath = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

function setPath(obj, path, value) {
  const keys = path.split(".");
  const leaf = keys.pop();
  const parent = keys.reduce((o, k) => (o[k] ??= {}), obj);
  if (value === undefined) delete parent[leaf];
  else parent[leaf] = value;
}

/** A field's text as a spec value; undefined (the server's default) when left empty. */
function parseField(field, text) {
  if (text.trim() === "") return undefined;
  if (field.options || field.type === "text") return text;
  if (field.type === "ints") return text.split(/[\s,]+/).filter(Boolean).map(Number);
  return Number(text);
}

function fieldInput(field, value) {
  if (field.options) {
    return h("select", { "data-path": field.path },
      field.options.map((o) => h("option", { value: o, selected: o === value }, o)));
  }
  const numeric = field.type === "int" || field.type === "float";
  return h("input", {
    "data-path": field.path,
    type: numeric ? "number" : "text",
    step: field.type === "float" ? "any" : "1",
    placeholder: "default",
    value: Array.isArray(value) ? value.join(", ") : value ?? "",
  });
}

/** The specs to start from: the seed exercises, and with ?from=<id> that job's spec first. */
async function startingPoints(from, signal) {
  const examples = await api("v1/jobs/examples", { signal });
  if (!from) return examples;
  const job = await api(`v1/jobs/${from}`, { signal });
  return { [`job:${from}`]: { summary: `Again: ${jobLabel(job)}`, value: job.spec }, ...examples };
}

export async function newView(root, signal, queryText = "") {
  const query = new URLSearchParams(queryText);
  const examples = await startingPoints(query.get("from"), signal);
  const names = Object.keys(examples);
  const pick = h("select", { id: "example" }, names.map((n) => h("option", { value: n }, examples[n].summary)));
  const about = h("p", { class: "muted" });
  const fields = h("div", { class: "fields" });
  const errors = h("ul", { id: "form-errors", class: "error", hidden: true });
  const submit = h("button", { id: "submit", class: "primary", type: "submit" }, "Submit");
  const json = h("textarea", { id: "spec-json", spellcheck: "false", rows: 26 });
  const spec = () => JSON.parse(json.value);

  function renderFields() {
    let s;
    try {
      s = spec();
    } catch {
      return; // JSON being edited: leave the fields as they are
    }
    if (!s || typeof s !== "object") return;
    fields.replaceChildren(...FIELDS.filter((f) => !f.when || f.when(s)).map((f) => {
      const input = fieldInput(f, getPath(s, f.path));
      input.addEventListener("change", () => edit(f, input.value));
      return h("label", {}, h("span", {}, f.label), input);
    }));
  }
  function edit(field, text) {
    let s;
    try {
      s = spec();
    } catch (err) {
      return showProblems([`JSON: ${err.message}`]);
    }
    if (field.path === "optimizer.kind") {
      s.optimizer = { kind: text, learning_rate: s.optimizer?.learning_rate }; // drop the old kind's fields
    } else {
      setPath(s, field.path, parseField(field, text));
    }
    json.value = JSON.stringify(s, null, 2);
    renderFields();
  }
  function load() {
    json.value = JSON.stringify(examples[pick.value].value, null, 2);
    about.textContent = examples[pick.value].summary;
    errors.hidden = true;
    renderFields();
  }
  /** The problems as a list, and the fields they name outlined. */
  function showProblems(problems, paths = []) {
    errors.replaceChildren(...problems.map((p) => h("li", {}, p)));
    errors.hidden = false;
    for (const input of fields.querySelectorAll("[data-path]")) {
      const path = input.dataset.path;
      input.classList.toggle("invalid", paths.some((p) => p === path || p.startsWith(`${path}[`)));
    }
  }
  async function send(event) {
    event.preventDefault();
    let body;
    try {
      body = JSON.stringify(spec());
    } catch (err) {
      return showProblems([`JSON: ${err.message}`]);
    }
    submit.disabled = true;
    try {
      const job = await api("v1/jobs", { method: "POST", body, signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      const detail = err.body && err.body.detail;
      if (!Array.isArray(detail)) return showProblems([err.message]);
      showProblems(detail.map((d) => `${d.field || "spec"}: ${d.msg}`), detail.map((d) => d.field || ""));
    } finally {
      submit.disabled = false;
    }
  }

  pick.addEventListener("change", load);
  json.addEventListener("input", renderFields);
  const wanted = query.get("from") ? `job:${query.get("from")}` : query.get("example");
  if (names.includes(wanted)) pick.value = wanted;
  load();
  root.append(h("h1", {}, "New job"), h("form", { id: "new-job", class: "new-job", onsubmit: send },
    h("div", { class: "card" }, h("label", {}, h("span", {}, "exercise"), pick), about, fields, errors, submit),
    h("div", { class: "card" }, h("h2", {}, "Spec — posted as is; edit anything"), json)));
}
