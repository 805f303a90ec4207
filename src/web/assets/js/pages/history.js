// History: finished requests with search and filters, and the totals.

import { get, post, query } from "../api.js";
import { act, fill, h, heading, notify, table } from "../ui.js";
import { bytes, stamp, status, when } from "../words.js";

const STATUSES = ["", "done", "failed", "cancelled", "skipped", "needs_review"];
const KINDS = ["", "download", "track", "upload", "check_watch"];

export async function render(main, _params, session) {
  const stats = h("div", { class: "row", id: "stats" });
  const q = h("input", { type: "search", name: "q", placeholder: "Title or link" });
  const st = h("select", { name: "status", "aria-label": "Status" }, STATUSES.map((s) => h("option", { value: s }, s ? status(s) : "Any status")));
  const kind = h("select", { name: "kind", "aria-label": "Kind" }, KINDS.map((k) => h("option", { value: k }, k || "Any kind")));
  const out = h("div", {});
  const more = h("button", { hidden: true }, "More");
  const body = h("tbody", {});
  let cursor = null;

  async function load(reset) {
    if (reset) {
      cursor = null;
      body.replaceChildren();
    }
    const page = await get("/history" + query({ q: q.value.trim(), status: st.value, kind: kind.value, limit: 50, cursor }));
    body.append(...page.items.map((t) => h("tr", { dataset: { task: t.id } },
      h("td", {}, h("a", { href: `#/task/${t.id}` }, t.title || t.source || t.id), t.error ? h("div", { class: "error-text small" }, t.error) : null),
      h("td", {}, h("span", { class: `status ${t.status}` }, status(t.status))),
      h("td", { class: "hide-narrow" }, t.kind),
      h("td", {}, h("time", { title: stamp(t.finished_at) }, when(t.finished_at || t.updated_at))))));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    fill(out, body.children.length ? table("History", ["What", "Status", "Kind", "Finished"], body) : h("p", { class: "muted" }, "Nothing here."));
  }

  async function loadStats() {
    const s = await get("/history/stats");
    const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
    const card = (label, value) => h("div", { class: "card grow" }, h("div", { class: "muted small" }, label), h("b", {}, value));
    fill(stats,
      card("Requests", String(sum(s.requests))),
      card("Tracks done", String((s.tracks || {}).done || 0)),
      card("Tracks failed", String((s.tracks || {}).failed || 0)),
      card("Last 24 hours", `${s.tracks_last_24h} tracks`),
      card("Downloaded", bytes(s.bytes_downloaded)));
  }

  const form = h("form", { role: "search", class: "row" }, h("div", { class: "grow" }, q), st, kind, h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(null, () => load(true));
  });
  more.addEventListener("click", () => act(more, () => load(false)));
  const cleanup = session.user.role === "admin" ? h("button", { class: "link", onclick: (e) => act(e.target, async () => {
    const days = prompt("Delete finished requests older than how many days?", "30");
    if (!days) return;
    const r = await post("/history/cleanup", { days_old: Number(days) });
    notify(`Removed ${r.deleted ?? r.removed ?? 0} old entries.`);
    await load(true);
  }) }, "Clean up old entries") : null;
  main.append(heading("History"), stats, form, out, more, cleanup);
  await Promise.all([load(true), loadStats()]);
}
