/* #/sign-in — takes an API token (from `gradlab users add`, or an instructor), checks it with
 * GET v1/me, and keeps it in this tab's sessionStorage. Nothing else is shown before it. */

import { h, session, whoami } from "./lib.js";

export async function signInView(root) {
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off",
    placeholder: "glab_…", required: true, size: 50 });
  const error = h("div", { id: "sign-in-error", class: "error", hidden: true });
  async function submit(event) {
    event.preventDefault();
    session.signIn(input.value.trim());
    const who = await whoami().catch(() => null);
    if (!who) {
      session.signOut();
      error.hidden = false;
      error.textContent = "That token is not valid: it is unknown or has been revoked.";
      return;
    }
    location.hash = sessionStorage.getItem("gradlab.next") || "#/";
    sessionStorage.removeItem("gradlab.next");
  }
  root.append(h("form", { id: "sign-in", class: "card", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "This server needs an API token. Paste yours; it is kept in this tab only."),
    h("label", { for: "token" }, "API token "), input, " ",
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error));
  input.focus();
}
