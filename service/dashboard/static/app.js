/* gradlab's dashboard: a hash-routed single page over the JSON API. No framework and no build
 * step (ES modules); the one library, uPlot, is vendored. Every URL is relative, so the page
 * also works behind a path prefix.
 *
 *   #/                                the jobs (list.js)
 *   #/jobs/<id>                       one job, live while it trains (job.js)
 *   #/compare?ids=a,b | ?sweep=<id>   loss curves overlaid (compare.js)
 *   #/new[?example=<name>|?from=<id>] submit a spec (submit.js)
 */

import { compareView } from "./compare.js";
import { jobView } from "./job.js";
import { catalog, h } from "./lib.js";
import { listView } from "./list.js";
import { newView } from "./submit.js";

const ROUTES = [
  [/^#?\/?$/, listView, "list"],
  [/^#\/jobs\/([^/?]+)$/, jobView, "list"],
  [/^#\/compare(?:\?(.*))?$/, compareView, "list"],
  [/^#\/new(?:\?(.*))?$/, newView, "new"],
];
let current = null; // the shown view's AbortController

/** Show the view the hash names; a view stops its timers, streams and charts on `signal`. */
async function route() {
  if (current) current.abort();
  const ctl = new AbortController();
  current = ctl;
  const root = h("div", { class: "page" });
  document.getElementById("view").replaceChildren(root);
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

window.addEventListener("hashchange", route);
catalog().catch(() => {}); // asked at once, alongside the first view's own requests
route();
