// Task: a request and its tracks with status and errors in words; tracks that need review
// show their ranked candidates, to pick one or give a link instead.

import { get, post, del, query } from "../api.js";
import * as events from "../events.js";
import { act, bar, field, fill, h, heading, notify, table } from "../ui.js";
import { bytes, clock, ended, stamp, status, when } from "../words.js";
import { go } from "../app.js";

export async function render(main, params) {
  const id = params[0];
  let task = await get(`/tasks/${id}`);
  const head = h("div", {});
  const kids = h("tbody", {});
  const rows = new Map();
  main.append(heading(task.title || task.source || "Task"), head);

  function header() {
    const actions = [];
    if (!ended(task.status)) actions.push(h("button", { class: "danger", onclick: (e) => act(e.target, () => post(`/tasks/${id}/cancel`)) }, "Cancel"));
    else {
      if (task.status === "failed" || task.error) actions.push(h("button", { onclick: (e) => act(e.target, async () => {
        const r = await post(`/tasks/${id}/retry`);
        notify(`Retrying ${r.retried}.`);
      }) }, "Retry failed"));
      actions.push(h("button", { class: "link", onclick: (e) => act(e.target, async () => {
        await del(`/tasks/${id}`);
        go("#/history");
      }) }, "Delete from history"));
    }
    fill(head, h("div", { class: "card" },
      h("p", {}, h("span", { class: `status ${task.status}`, id: "task-status" }, status(task.status)), " ",
        h("span", { class: "muted" }, `${task.kind} · created `, h("time", { title: stamp(task.created_at) }, when(task.created_at)))),
      task.source ? h("p", { class: "small muted" }, task.source) : null,
      bar(Math.round(task.progress * 100), "overall progress"),
      task.error ? h("p", { class: "error-text", role: "alert" }, task.error) : null,
      task.output_path ? h("p", { class: "small" }, "Saved as ", h("code", {}, task.output_path)) : null,
      h("div", { class: "row" }, actions)));
  }

  function childRow(c) {
    const tr = h("tr", { dataset: { task: c.id, status: c.status } });
    const review = c.status === "needs_review"
      ? h("button", { class: "primary review", onclick: () => showReview(c, tr) }, "Review")
      : null;
    fill(tr,
      h("td", {}, h("div", {}, c.title || c.source || c.id),
        c.error ? h("div", { class: "error-text small" }, c.error) : null,
        c.output_path ? h("div", { class: "muted small" }, c.output_path) : null),
      h("td", {}, h("span", { class: `status ${c.status}` }, status(c.status))),
      h("td", { class: "hide-narrow" }, ended(c.status) ? "" : bar(Math.round(c.progress * 100))),
      h("td", {}, review));
    return tr;
  }

  async function loadChildren() {
    if (task.kind === "track") return;
    const page = await get(`/tasks/${id}/children` + query({ limit: 500 }));
    for (const c of page.items) {
      const tr = childRow(c);
      const old = rows.get(c.id);
      if (old) old.replaceWith(tr);
      else kids.append(tr);
      rows.set(c.id, tr);
    }
  }

  async function showReview(c, tr) {
    const panel = h("div", { class: "card", id: `review-${c.id}` }, h("p", { class: "loading" }, "Loading candidates…"));
    const cell = h("td", { colspan: "4" }, panel);
    const holder = h("tr", { class: "review-row" }, cell);
    tr.after(holder);
    const r = await get(`/tasks/${c.id}/candidates`);
    const t = r.track || {};
    const url = h("input", { type: "url", name: "match_url", placeholder: "https://music.youtube.com/watch?v=…" });
    const useUrl = h("button", { type: "submit" }, "Use this link");
    const urlForm = h("form", { class: "row" }, h("div", { class: "grow" }, field("Or give a link to the right recording", url)), useUrl);
    urlForm.addEventListener("submit", (e) => {
      e.preventDefault();
      act(useUrl, async () => {
        await post(`/tasks/${c.id}/match`, { url: url.value.trim() });
        notify("Downloading your pick.");
        holder.remove();
      });
    });
    // One player for the panel: a candidate's audio, fetched by musicd on first play.
    const player = h("audio", { controls: true, preload: "none", class: "preview-player", hidden: true });
    const playing = h("p", { class: "small muted", "aria-live": "polite" });
    function hear(k, button) {
      player.hidden = false;
      player.src = `/api/v1/tasks/${c.id}/candidates/${k.index}/preview`;
      playing.textContent = `Fetching “${k.title}”…`;
      player.oncanplay = () => { playing.textContent = `Playing “${k.title}” (${k.source})`; };
      player.onerror = () => { playing.textContent = `“${k.title}” could not be fetched for a preview.`; };
      player.play().catch(() => {});
      if (button) button.blur();
    }
    fill(panel,
      h("h2", {}, `Which is “${t.title || c.title}”?`),
      playing, player,
      h("p", { class: "muted" }, (t.artists || []).join(", "), t.album ? ` · ${t.album}` : "",
        t.duration_ms ? ` · ${clock(t.duration_ms, true)}` : "", t.isrc ? ` · ISRC ${t.isrc}` : ""),
      r.candidates.length ? h("ol", { class: "candidates" }, r.candidates.map((k) => h("li", { class: "candidate", dataset: { index: k.index } },
        h("div", { class: "row" },
          h("span", { class: "score", title: "match score out of 100" }, String(Math.round(k.score))),
          h("div", { class: "grow" },
            h("div", {}, k.title, k.official ? h("span", { class: "status done" }, "official") : null),
            h("div", { class: "muted small" }, (k.artists || []).join(", "), k.duration_ms ? ` · ${clock(k.duration_ms, true)}` : "",
              ` · ${k.source}`)),
          h("button", { class: "preview", "aria-label": `Hear ${k.title}`, onclick: (e) => hear(k, e.target) }, "▶ Hear it"),
          h("a", { href: k.url, target: "_blank", rel: "noopener noreferrer", class: "small" }, "Its page ↗"),
          h("button", { class: "primary use", onclick: (e) => act(e.target, async () => {
            await post(`/tasks/${c.id}/match`, { candidate: k.index });
            notify("Downloading your pick.");
            holder.remove();
          }) }, "Use this one")),
        k.reasons && k.reasons.length ? h("ul", { class: "small muted" }, k.reasons.map((x) => h("li", {}, x))) : null)))
        : h("p", {}, "No candidates were found."),
      h("p", { class: "small muted" }, "Searched: ", r.queries.join(" · ")),
      urlForm);
  }

  header();
  if (task.kind !== "track") {
    main.append(h("h2", {}, "Tracks"), table("Tracks of this request", ["Track", "Status", "Progress", ""], kids));
    await loadChildren();
  } else {
    rows.set(task.id, childRow(task));
    main.append(table("This track", ["Track", "Status", "Progress", ""], kids));
    kids.append(rows.get(task.id));
  }

  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      task = await get(`/tasks/${id}`);
      header();
      if (task.kind === "track") {
        const tr = childRow(task);
        rows.get(task.id).replaceWith(tr);
        rows.set(task.id, tr);
      } else await loadChildren();
    }, 150);
  };
  const off = events.subscribe((type, data) => {
    if (data.task_id === id || data.parent_id === id) {
      const tr = rows.get(data.task_id);
      if (tr && type === "task.progress" && !ended(data.status)) {
        const b = tr.querySelector("progress");
        if (b) b.value = data.percent;
        const note = data.bytes_total ? `${bytes(data.bytes_done)} of ${bytes(data.bytes_total)}` : "";
        if (note) b.title = note;
      } else refresh();
    }
  });
  const offState = events.onState((s, resumed) => { if (s === "live" && resumed) refresh(); });
  return () => {
    off();
    offState();
    if (pending) clearTimeout(pending);
  };
}
