/* gradlab's dashboard: a hash-routed single page over the JSON API. No framework and no build
 * step (ES modules); the one library, uPlot, is vendored. Every URL is relative, so the page
 * also works behind a path prefix.
 *
 *   #/                                the jobs (list.js)
 *   #/jobs/<id>                       one job, live while it trains (job.js)
 *   #/compare?ids=a,b | ?sweep=<id>   loss curves overlaid (compare.js)
 *   #/new[?example=<name>|?from=<id>] submit a spec (submit.js)
 *   #/assignments[/<name>]            assignments, one with its instance or gradebook (assignments.js)
 *   #/sign-in                         the API token, when the server needs one (signin.js)
 *
 * With GRADLAB_AUTH=required no view is shown, and nothing asked of the API but who the token
 * is, before sign-in: every other hash goes to the sign-in page first.
 */

import { assignmentView, assignmentsView } from "./assignments.js";
import { compareView } from "./compare.js";
import { jobView } from "./job.js";
import { catalog, h, session, whoami } from "./lib.js";
import { listView } from "./list.js";
import { signInView } from "./signin.js";
import { newView } from "./submit.js";

const ROUTES = [
  [/^#?\/?$/, listView, "list"],
  [/^#\/jobs\/([^/?]+)$/, jobView, "list"],
  [/^#\/compare(?:\?(.*))?$/, compareView, "list"],
  [/^#\/new(?:\?(.*))?$/, newView, "new"],
  [/^#\/assignments$/, assignmentsView, "assignments"],
  [/^#\/assignments\/([^/?]+)$/, assignmentView, "assignments"],
  [/^#\/sign-in$/, signInView, "sign-in"],
];
let current = null; // the shown view's AbortController

/** Show the view the hash names; a view stops its timers, streams and charts on `signal`. */
async function route() {
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  const root = h("div", { class: "page" });
  document.getElementById("view").replaceChildren(root);
  const signingIn = location.hash === "#/sign-in";
  const who = await whoami().catch(() => null);
  if (ctl.signal.aborted) return;
  showAccount(who);
  if (!who && !signingIn) {
    sessionStorage.setItem("gradlab.next", location.hash || "#/");
    location.replace("#/sign-in"); // a hashchange: route() runs again for it
    return;
  }
  if (who) catalog().catch(() => {}); // asked once signed in, alongside the view's own requests
  const found = ROUTES.map(([re, view, nav]) => [location.hash.match(re), view, nav]).find(([m]) => m);
  if (!found) {
    root.append(h("p", { class: "empty" }, "No such page. ", h("a", { href: "#/" }, "Back to the jobs.")));
    return;
  }
  const [match, view, nav] = found;
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  try {
    await view(root, ctl.signal, ...match.slice(1));
  } catch (err) {
    if (!ctl.signal.aborted) root.append(h("div", { class: "error" }, err.message));
  }
}

/** The account in the header, and a way out when there is a token to forget. */
function showAccount(who) {
  const box = document.getElementById("account");
  const out = h("a", { href: "#/sign-in", id: "sign-out", onclick: () => session.signOut() }, "Sign out");
  box.replaceChildren(...(who ? [h("span", { id: "who" }, `${who.name} (${who.role})`)] : []),
    ...(session.token() ? [" ", out] : []));
}

window.addEventListener("hashchange", route);
route();
