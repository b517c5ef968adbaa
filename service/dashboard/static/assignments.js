/* #/assignments — the assignments a caller may see; #/assignments/<name> — one of them: a
 * student's instance, an editor pre-filled with the template, a box for their gradients and
 * their history of submissions; an instructor's gradebook (sortable, filterable, CSV) and
 * the insights with a histogram of scores. A submission still being graded (code, run as a job)
 * is asked for again until its feedback arrives, and shown then without a reload. */

import { ApiError, api, fileLink, fmt, h, num, section, table, whoami } from "./lib.js";

export async function assignmentsView(root, signal) {
  const { assignments } = await api("v1/assignments", { signal });
  const rows = assignments.map((a) => h("tr", { "data-name": a.name },
    h("td", {}, h("a", { href: `#/assignments/${a.name}` }, a.name)),
    h("td", {}, a.title), h("td", {}, a.submit),
    h("td", { title: a.due_at || "" }, a.due_at || "–"), num(fmt.num(a.max_score))));
  root.append(h("h1", {}, "Assignments"),
    table("assignments-table", ["name", "title", "submit", "due", "points"],
      rows.length ? rows : [h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No assignments."))],
      ["points"]));
}

export async function assignmentView(root, signal, name) {
  const who = await whoami();
  const a = await api(`v1/assignments/${encodeURIComponent(name)}`, { signal });
  const description = h("div", { class: "markdown" }, a.description_tree.map(node));
  root.append(h("h1", {}, a.title), description,
    h("p", { class: "muted" }, `${a.submit} · ${fmt.num(a.max_score)} points · `,
      a.due_at ? `due ${a.due_at}${a.past_due ? " (passed)" : ""}` : "no due date"),
    section("Checks", table("checks-table", ["check", "points", "visibility"],
      a.checks.map((c) => h("tr", {}, h("td", {}, c.name), num(fmt.num(c.points)), h("td", {}, c.visibility))),
      ["points"])));
  if (who.role === "student") await studentPart(root, signal, a);
  else await staffPart(root, signal, a);
}

/** A description node from the server's Markdown tree: [tag, attrs, ...children] or text,
 *  built with h() (text set as text, never parsed as HTML). */
function node(n) {
  if (typeof n === "string") return n;
  const [tag, attrs, ...children] = n;
  const safe = tag === "a" && attrs.href ? { href: attrs.href, rel: "noopener" } : {};
  return h(tag, safe, children.map(node));
}

/** How often a pending submission's feedback is asked for again, until it is graded. */
export const FEEDBACK_MS = 1000;

async function studentPart(root, signal, a) {
  const inst = a.instance;
  const shapes = Object.entries(inst.shapes).map(([k, s]) => `${k} (${s.join(", ")})`).join(", ");
  const editor = h("textarea", { id: "code", rows: 16, cols: 80, spellcheck: "false" });
  editor.value = inst.template;
  const grads = h("textarea", { id: "gradients", rows: 8, cols: 80, spellcheck: "false",
    placeholder: '{"gradients": {"W": [[…]], "b": […]}, "loss_value": …}' });
  const feedback = h("div", { id: "feedback" });
  const history = h("tbody");
  let watching = null; // the AbortController of the pending submission being followed
  const send = h("button", { id: "submit", class: "primary", onclick: async () => {
    watching?.abort();
    feedback.replaceChildren();
    delete feedback.dataset.status;
    try {
      const body = a.submit === "code" ? JSON.stringify({ code: editor.value }) : grads.value;
      const sub = await api(`v1/assignments/${a.name}/submissions`, { method: "POST", body });
      show(sub);
      await refresh();
    } catch (err) {
      feedback.append(h("div", { class: "error" }, err.message));
    }
  } }, "Submit");
  /** The submission's feedback; a pending one is followed until it is graded (or not). */
  function show(sub) {
    feedback.replaceChildren(result(sub));
    feedback.dataset.status = sub.status;
    feedback.dataset.submission = sub.id;
    if (sub.status === "pending") follow(sub.id);
  }
  /** Ask for the submission every FEEDBACK_MS until it is no longer pending, then show it and
   *  stop; stops too when another submission is made or the page is left. */
  async function follow(id) {
    watching?.abort();
    const ctl = new AbortController();
    watching = ctl;
    signal.addEventListener("abort", () => ctl.abort(), { once: true });
    while (!ctl.signal.aborted) {
      await pause(FEEDBACK_MS, ctl.signal);
      if (ctl.signal.aborted) return;
      let sub;
      try {
        sub = await api(`v1/assignments/${a.name}/submissions/${id}`, { signal: ctl.signal });
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status < 500) { // gone, or no longer ours: stop
          feedback.append(h("div", { class: "error" }, err.message));
          return;
        }
        continue; // the server is restarting, say: ask again
      }
      if (sub.status !== "pending") {
        watching = null;
        show(sub);
        await refresh().catch(() => {});
        return;
      }
    }
  }
  async function refresh() {
    const { submissions } = await api(`v1/assignments/${a.name}/submissions`, { signal });
    history.replaceChildren(...submissions.slice().reverse().map((s) => h("tr", { "data-status": s.status },
      num(s.attempt), h("td", {}, fmt.ago(s.submitted_at)), h("td", {}, s.status),
      num(`${fmt.num(s.score)} / ${fmt.num(s.max_score)}`), h("td", {}, s.late ? "late" : ""))));
    return submissions;
  }
  root.append(
    section("Your instance", h("p", {}, `${inst.signature}; params ${shapes}; X has `,
      `${inst.data.X.length} rows.`),
      fileLinkJson("Download your data and parameters (JSON)", inst, `${a.name}-${inst.student}.json`)),
    section("Your code", editor),
    ...(a.submit === "gradients" ? [section("Your gradients at params", grads)] : []),
    h("div", { class: "toolbar" }, send), feedback,
    section("Your submissions", table("history-table", ["#", "submitted", "status", "score", ""],
      history, ["#", "score"])));
  const submissions = await refresh();
  const latest = submissions[submissions.length - 1];
  if (latest && latest.status === "pending") show(latest); // still being graded: follow it
}

/** Resolve after `ms`, or at once when `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function fileLinkJson(label, data, filename) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data)], { type: "application/json" }));
  return h("a", { href: url, download: filename }, label);
}

function result(sub) {
  return section(`${sub.status}: ${fmt.num(sub.score)} of ${fmt.num(sub.max_score)}${sub.late ? " (late)" : ""}`,
    sub.status === "pending" ? h("p", { class: "muted", id: "grading" },
      "Being graded: the feedback appears here when it is done.") : null,
    sub.reason ? h("p", { class: "error" }, sub.reason) : null,
    sub.checks.length === 0 ? null : table("result-table", ["check", "points", "message"], sub.checks.map((c) => h("tr",
      { "data-check": c.name, "data-passed": c.withheld ? "withheld" : String(c.passed) },
      h("td", {}, c.name),
      num(c.withheld ? `? / ${fmt.num(c.max_points)}` : `${fmt.num(c.points)} / ${fmt.num(c.max_points)}`),
      h("td", {}, c.withheld ? "hidden" : c.message))), ["points"]));
}

async function staffPart(root, signal, a) {
  const book = await api(`v1/assignments/${a.name}/grades`, { signal });
  const insights = await api(`v1/assignments/${a.name}/insights`, { signal });
  const state = { key: "student", down: false, filter: "" };
  const body = h("tbody");
  const filter = h("input", { id: "grades-filter", placeholder: "filter students",
    oninput: () => { state.filter = filter.value; draw(); } });
  const keys = ["student", "score", "submitted_at", "late", "attempts", "status"];
  function draw() {
    const rows = book.grades.filter((g) => g.student.includes(state.filter)).sort((x, y) => {
      const [p, q] = [x[state.key], y[state.key]];
      const c = p == null ? -1 : q == null ? 1 : p < q ? -1 : p > q ? 1 : 0;
      return state.down ? -c : c;
    });
    body.replaceChildren(...rows.map((g) => h("tr", { "data-student": g.student },
      h("td", {}, g.student), num(g.score == null ? "–" : `${fmt.num(g.score)} / ${fmt.num(g.max_score)}`),
      h("td", {}, g.submitted_at || "–"), h("td", {}, g.late ? "late" : ""), num(g.attempts),
      h("td", {}, g.status))));
  }
  const grid = table("grades-table", keys, body, ["score", "attempts"]);
  grid.querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => {
    state.down = state.key === keys[i] ? !state.down : false;
    state.key = keys[i];
    draw();
  }));
  draw();
  const most = Math.max(1, ...insights.scores.map((s) => s.count));
  const histogram = h("div", { id: "histogram", class: "histogram" }, insights.scores.map((s) =>
    h("div", { class: "row" }, h("span", {}, fmt.num(s.score)),
      h("span", { class: "bar", style: { width: `${(60 * s.count) / most}%`, background: "#2563eb",
        display: "inline-block", height: "0.8em", margin: "0 0.5em" } }), String(s.count))));
  const diagnoses = Object.entries(insights.diagnoses).flatMap(([, list]) =>
    list.filter((d) => d.code !== "correct").map((d) => h("li", {}, d.summary)));
  root.append(
    section("Gradebook", h("div", { class: "toolbar" }, filter,
      fileLink("Download CSV", `v1/assignments/${a.name}/grades?format=csv`, `${a.name}-grades.csv`)), grid),
    section("Insights",
      table("insights-table", ["check", "passed"], insights.checks.map((c) =>
        h("tr", {}, h("td", {}, c.name), num(`${c.passed} of ${c.of}`))), ["passed"]),
      h("ul", { id: "diagnoses" }, diagnoses), h("h3", {}, "Scores"), histogram));
}
