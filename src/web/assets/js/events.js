// The event stream: one EventSource for the page, opened with a single-use ticket (an
// EventSource cannot send headers). When the connection drops, a new ticket reopens it after
// the last event id seen, so the server replays what was missed; pages also reload their
// state when the stream comes back, in case the server's replay buffer moved on.

import { post } from "./api.js";

const TYPES = [
  "task.created", "task.queued", "task.started", "task.progress", "task.retrying",
  "task.completed", "task.failed", "task.skipped", "task.cancelled", "task.needs_review",
  "watch.checked",
];

const listeners = new Set();
const stateListeners = new Set();
let source = null;
let lastId = "";
let retry = 500;
let timer = null;
let running = false;
let connected = false;

/** Calls `f(type, data)` for every event until the returned function is called. */
export function subscribe(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

/** Calls `f("live" | "reconnecting" | "closed", resumed)` when the connection changes. */
export function onState(f) {
  stateListeners.add(f);
  return () => stateListeners.delete(f);
}

function setState(state, resumed = false) {
  connected = state === "live";
  const el = document.getElementById("stream-state");
  if (el) {
    el.dataset.state = state;
    el.textContent = state === "live" ? "live" : state === "reconnecting" ? "reconnecting…" : "offline";
  }
  for (const f of stateListeners) f(state, resumed);
}

/** Whether the stream is connected now. */
export function isLive() {
  return connected;
}

async function open() {
  timer = null;
  if (!running) return;
  let ticket;
  try {
    ticket = (await post("/events/ticket", {})).ticket;
  } catch (e) {
    if (e.status === 401) return stop();
    return later();
  }
  if (!running) return;
  const q = new URLSearchParams({ ticket });
  if (lastId) q.set("last_event_id", lastId);
  const es = new EventSource("/api/v1/events?" + q.toString());
  source = es;
  const resumed = Boolean(lastId);
  es.onopen = () => {
    retry = 500;
    setState("live", resumed);
  };
  es.onerror = () => {
    // The browser would retry with the same ticket, which works once; open a new one.
    es.close();
    if (source === es) source = null;
    later();
  };
  for (const type of TYPES) {
    es.addEventListener(type, (m) => {
      const arrived = performance.now();
      if (m.lastEventId) lastId = m.lastEventId;
      let data;
      try {
        data = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      for (const f of listeners) f(type, data);
      // From arrival to the frame that shows it: what `cargo bench --bench web` reads.
      requestAnimationFrame(() => {
        performance.measure("musicd:event", { start: arrived, end: performance.now(), detail: type });
        if (performance.getEntriesByName("musicd:event").length > 1000) performance.clearMeasures("musicd:event");
      });
    });
  }
}

function later() {
  setState(running ? "reconnecting" : "closed");
  if (!running || timer) return;
  timer = setTimeout(open, retry);
  retry = Math.min(retry * 2, 5000);
}

// A page that is left (or kept in the back-forward cache) closes its stream at once: a
// browser opens at most six connections to one host, and lingering streams would use them up.
window.addEventListener("pagehide", () => {
  if (source) source.close();
  source = null;
});
window.addEventListener("pageshow", (e) => {
  if (e.persisted && running) open();
});

/** Opens the stream (once signed in). */
export function start() {
  if (running) return;
  running = true;
  open();
}

/** Closes it (on sign-out). */
export function stop() {
  running = false;
  if (source) source.close();
  source = null;
  lastId = "";
  if (timer) clearTimeout(timer);
  timer = null;
  setState("closed");
}
