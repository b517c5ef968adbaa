/* #/new — submit a seed exercise (or ?from=<job id>: that job's spec) with edited
 * hyperparameters. The JSON is what is posted; the fields are a convenient view of it. */

import { api, catalog as loadCatalog, h, jobLabel } from "./lib.js";

const LABELS = { learning_rate: "learning rate", batch_size: "batch size", hidden_sizes: "hidden sizes" };

/** A field for a catalog option: `{default, type: "int" | "float" | "ints" | "choice", choices}`. */
function optionField(path, name, option) {
  const label = LABELS[name] || name.replaceAll("_", " ");
  if (option.type === "choice") return { path, label, options: option.choices };
  return { path, label, type: option.type };
}

/** The fields for spec `s`, from the catalog (GET /v1/catalog): each edits one path of the JSON,
 *  and only the options of the kinds `s` picks are shown. */
function fieldsFor(s, catalog) {
  const model = catalog.models[s.model?.kind];
  const optimizer = catalog.optimizers[s.optimizer?.kind];
  const loss = catalog.losses[s.loss || model?.default_loss];
  const options = (section, entries) => Object.entries(entries || {})
    .filter(([name]) => name !== "seed")
    .map(([name, option]) => optionField(`${section}.${name}`, name, option));
  return [
    { path: "name", label: "name", type: "text" },
    { path: "iterations", label: "iterations", type: "int" },
    { path: "model.kind", label: "model", options: Object.keys(catalog.models) },
    ...(model ? [{ path: "loss", label: "loss", options: model.losses }] : []),
    ...options("loss_options", loss?.options),
    { path: "optimizer.kind", label: "optimizer", options: Object.keys(catalog.optimizers) },
    ...options("optimizer", optimizer?.options),
    { path: "l2", label: "L2 strength", type: "float" },
    ...options("model", model?.options),
    { path: "gradient_check.every", label: "check gradients every", type: "int" },
  ];
}

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
  let spec = job.spec;
  if (spec.data.kind === "dataset") {  // an uploaded dataset: named by its id again
    spec = { ...spec, data: { kind: "dataset", id: spec.data.id } };
  } else if (job.data.sha256) {  // stored inline data: its arrays back in place of the reference
    const arrays = await api(job.data.href.replace(/^\//, ""), { signal });
    spec = { ...spec, data: { kind: "inline", X: arrays.X, y: arrays.y } };
  }
  return { [`job:${from}`]: { summary: `Again: ${jobLabel(job)}`, value: spec }, ...examples };
}

export async function newView(root, signal, queryText = "") {
  const query = new URLSearchParams(queryText);
  const [examples, catalog] = await Promise.all([
    startingPoints(query.get("from"), signal), loadCatalog()]);
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
    fields.replaceChildren(...fieldsFor(s, catalog).map((f) => {
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
    } else if (field.path === "model.kind") {
      s.model = { kind: text }; // the new kind's options take their defaults
      if (!catalog.models[text].losses.includes(s.loss)) delete s.loss;
    } else if (field.path === "loss") {
      s.loss = text;
      delete s.loss_options; // the new loss's options take their defaults
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
