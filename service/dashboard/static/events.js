import { authFetch } from "./lib.js";

/* A job's live events (GET /v1/jobs/{id}/events, Server-Sent Events) read with fetch: unlike
 * EventSource, the first request can carry Last-Event-ID, so the stream starts where the stored
 * history the page already drew ends, instead of replaying every point. */

/** Call `onEvent(type, data)` for each event until it returns true, the stream's `signal`
 *  aborts, or the job is gone; a dropped connection resumes from the last id seen. */
export async function followEvents(url, lastId, onEvent, signal) {
  while (!signal.aborted) {
    try {
      const headers = lastId ? { "Last-Event-ID": lastId } : {};
      const res = await authFetch(url, { headers, signal });
      if (!res.ok) return;
      const stop = await readEvents(res.body, (type, data, id) => {
        if (id !== null) lastId = id;
        return onEvent(type, data);
      });
      if (stop) return;
    } catch (err) {
      if (signal.aborted) return;
      console.warn("event stream interrupted; resuming", err);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Parse an event stream (the WHATWG format: `field: value` lines, a blank line ends an event,
 *  `:` lines are comments such as pings). True when `dispatch` asked to stop. */
async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", type = "", data = [], id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    const held = buffer.endsWith("\r") ? "\r" : ""; // maybe the first half of a CRLF
    const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
    buffer = lines.pop() + held;
    for (const line of lines) {
      if (line === "") {
        if (data.length && dispatch(type || "message", JSON.parse(data.join("\n")), id)) {
          await reader.cancel();
          return true;
        }
        type = "";
        data = [];
        id = null;
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
}
