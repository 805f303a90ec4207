// Queue: what is running and waiting, updated live from the event stream: per track its
// stage, percent, speed and ETA; cancel, retry what failed, open a request.

import { get, post, query } from "../api.js";
import * as events from "../events.js";
import { act, announce, bar, fill, h, heading, notify } from "../ui.js";
import { bytes, ended, speed, status } from "../words.js";

/** One row per task, kept up to date from events. */
function row(t) {
  const tr = h("tr", { dataset: { task: t.task_id } });
  update(tr, t);
  return tr;
}

function update(tr, t) {
  tr.dataset.status = t.status;
  const title = t.title || t.source || t.task_id;
  const open = t.parent_id ? `#/task/${t.parent_id}` : `#/task/${t.task_id}`;
  const detail = [t.stage, t.bytes_total ? `${bytes(t.bytes_done)} of ${bytes(t.bytes_total)}` : t.bytes_done ? bytes(t.bytes_done) : "",
    speed(t.speed_bps), t.eta_seconds ? `${t.eta_seconds} s left` : ""].filter(Boolean).join(" · ");
  const actions = [];
  if (!ended(t.status)) {
    actions.push(h("button", { class: "link", onclick: (e) => act(e.target, () => post(`/tasks/${t.task_id}/cancel`)) }, "Cancel"));
  } else if (t.status === "failed" && t.parent_id) {
    actions.push(h("button", { class: "link", onclick: (e) => act(e.target, async () => {
      await post(`/tasks/${t.parent_id}/retry`);
      notify("Retrying the failed tracks.");
    }) }, "Retry"));
  } else if (t.status === "needs_review") {
    actions.push(h("a", { href: open }, "Review"));
  }
  fill(tr,
    h("td", {}, h("a", { href: open }, title), t.parent_id ? null : h("span", { class: "muted small" }, ` · ${t.task_kind}`),
      t.error ? h("div", { class: "error-text small" }, t.error) : null),
    h("td", {}, h("span", { class: `status ${t.status}` }, status(t.status))),
    h("td", { class: "progress-cell" }, bar(t.percent, `${title}: ${Math.round(t.percent || 0)} %`),
      h("div", { class: "muted small" }, detail)),
    h("td", {}, actions));
}

function fromView(v) {
  return { task_id: v.id, parent_id: v.parent_id, task_kind: v.kind, status: v.status, stage: v.stage,
    percent: Math.round((v.progress || 0) * 1000) / 10, bytes_done: v.bytes_done, bytes_total: v.bytes_total,
    error: v.error, title: v.title, source: v.source };
}

export async function render(main, params) {
  const body = h("tbody", {});
  const rows = new Map();
  const empty = h("p", { class: "muted" }, "Nothing is running. Add something, or check a watch.");
  const cancelAll = h("button", { class: "danger", onclick: (e) => act(e.target, async () => {
    if (!confirm("Cancel everything that is queued or running?")) return;
    const r = await post("/tasks/cancel-all");
    notify(`Cancelled ${r.cancelled}.`);
  }) }, "Cancel all");
  const tbl = h("table", { id: "queue", class: "stack" },
    h("caption", { class: "sr-only" }, "Active downloads"),
    h("thead", {}, h("tr", {}, ["What", "Status", "Progress", ""].map((c) => h("th", { scope: "col" }, c)))),
    body);
  main.append(heading("Queue"), h("div", { class: "row" }, h("p", { class: "grow muted" }, "Live; finished items stay until you leave the page."), cancelAll), empty, tbl);

  function put(t) {
    let tr = rows.get(t.task_id);
    if (tr) update(tr, t);
    else {
      tr = row(t);
      rows.set(t.task_id, tr);
      // A request first, its tracks after it.
      if (t.parent_id) tr.dataset.parent = t.parent_id;
      const parent = t.parent_id && rows.get(t.parent_id);
      if (parent) {
        let after = parent;
        while (after.nextSibling && after.nextSibling.dataset.parent === t.parent_id) after = after.nextSibling;
        after.after(tr);
      } else body.append(tr);
    }
    empty.hidden = rows.size > 0;
    tbl.hidden = rows.size === 0;
  }

  async function load() {
    const active = await get("/tasks" + query({ active_only: true, limit: 200 }));
    const items = active.items.slice().reverse();
    if (params[0] && !items.some((v) => v.id === params[0])) {
      try {
        items.unshift(await get(`/tasks/${params[0]}`));
      } catch (_) {
        // gone
      }
    }
    // Tracks of the requests shown, and those that changed while the stream was away.
    for (const v of items) put(fromView(v));
    for (const v of items.filter((x) => !x.parent_id && x.kind !== "track")) {
      const kids = await get(`/tasks/${v.id}/children` + query({ limit: 500 }));
      for (const k of kids.items) put(fromView(k));
    }
    for (const [id, tr] of rows) {
      if (!ended(tr.dataset.status) && !items.some((v) => v.id === id)) {
        try {
          put(fromView(await get(`/tasks/${id}`)));
        } catch (_) {
          // deleted
        }
      }
    }
  }

  const off = events.subscribe((type, data) => {
    if (!type.startsWith("task.") || data.task_kind === "check_watch") return;
    put(data);
    if (ended(data.status) && (data.title || data.source)) announce(`${data.title || data.source}: ${status(data.status)}`);
  });
  const offState = events.onState((state, resumed) => {
    if (state === "live" && resumed) load().catch((e) => notify(e.message, "error"));
  });
  await load();
  empty.hidden = rows.size > 0;
  tbl.hidden = rows.size === 0;
  return () => {
    off();
    offState();
  };
}
