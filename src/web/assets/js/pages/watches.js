// Watches: feeds, playlists and artists kept in sync. Add one (previewing what it holds),
// see when it was and will be checked and what the last check added, edit its schedule
// (in words next to the cron expression), pause it, dry-run a check to see the diff, or
// check now.

import { get, post, patch, del, query } from "../api.js";
import * as events from "../events.js";
import { act, field, fill, h, heading, notify, table } from "../ui.js";
import { cron, stamp, when } from "../words.js";

function result(w) {
  if (w.last_error) return h("span", { class: "error-text" }, w.last_error);
  const r = w.last_result;
  if (!r) return h("span", { class: "muted" }, "not checked yet");
  if (r.baseline) return `baseline of ${r.total} taken; new items will download`;
  if (!r.changed && !r.added && !r.removed) return `no change (${r.total} items)`;
  return [r.added ? `${r.added} added` : null, r.removed ? `${r.removed} removed` : null, `${r.total} items`].filter(Boolean).join(", ");
}

function cronInput(value) {
  const input = h("input", { name: "schedule", value: value || "", placeholder: "default schedule", autocomplete: "off", spellcheck: "false" });
  const words = h("small", { "aria-live": "polite" });
  const say = () => { words.textContent = input.value.trim() ? cron(input.value) : "the default schedule"; };
  input.addEventListener("input", say);
  say();
  return { input, words };
}

export async function render(main, params) {
  const list = h("div", { id: "watch-list" });
  const diffBox = h("div", { id: "dry-run", "aria-live": "polite" });
  const url = h("input", { name: "watch_url", type: "url", required: true, value: params[0] === "new" && params[1] ? params[1] : "" });
  const sched = cronInput("");
  const existing = h("input", { type: "checkbox", name: "download_existing" });
  const preview = h("div", { "aria-live": "polite" });
  const previewBtn = h("button", { type: "button", id: "watch-preview" }, "Preview");
  const add = h("button", { class: "primary", type: "submit", id: "watch-add" }, "Add watch");
  const form = h("form", { class: "card", id: "watch-form" },
    h("h2", {}, "Watch a feed, playlist or artist"),
    field("Link", url),
    h("div", { class: "field" }, h("label", { for: "new-schedule" }, "Schedule (cron)"), Object.assign(sched.input, { id: "new-schedule" }), sched.words),
    h("label", { class: "inline" }, existing, "Also download what it holds now (otherwise only what is added later)"),
    preview,
    h("div", { class: "row" }, previewBtn, add));
  previewBtn.addEventListener("click", () => act(previewBtn, async () => {
    const r = await get("/resolve" + query({ url: url.value.trim() }));
    const n = (r.tracks || []).length;
    fill(preview, h("div", { class: "card" },
      h("p", {}, h("b", {}, r.title || r.id), ` (${r.kind}): ${n} items now. `,
        existing.checked ? `All ${n} will download when you add it.` : "They become the baseline; only items added later download."),
      h("ul", { class: "diff small" }, (r.tracks || []).slice(0, 20).map((t) => h("li", {}, t.title || t.id)),
        n > 20 ? h("li", { class: "muted" }, `… and ${n - 20} more`) : null)));
  }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(add, async () => {
      const body = { url: url.value.trim(), download_existing: existing.checked };
      if (sched.input.value.trim()) body.schedule = sched.input.value.trim();
      await post("/watches", body);
      form.reset();
      sched.input.dispatchEvent(new Event("input"));
      fill(preview);
      notify("Watch added; its first check is running.");
      await load();
    });
  });

  async function dryRun(w, button) {
    const d = await post(`/watches/${w.id}/check` + query({ dry_run: true }));
    const confirmBtn = h("button", { class: "primary", id: "confirm-check" }, "Check now and download these");
    confirmBtn.addEventListener("click", () => act(confirmBtn, async () => {
      await checkNow(w);
      fill(diffBox);
    }));
    fill(diffBox, h("section", { class: "card", "aria-label": "Dry run" },
      h("h2", {}, `Dry run: ${w.title || w.url}`),
      d.baseline ? h("p", {}, `No baseline yet: ${d.total} items would become the baseline.`) : null,
      d.added.length || d.removed.length ? h("ul", { class: "diff" },
        d.added.map((x) => h("li", { class: "added" }, "+ ", x.title || x.id, x.artists && x.artists.length ? ` — ${x.artists.join(", ")}` : "")),
        d.removed.map((x) => h("li", { class: "removed" }, "− ", x.title || x.id)))
        : h("p", {}, "Nothing new since the last check."),
      h("p", { class: "muted small" }, "Nothing was downloaded."),
      d.added.length ? confirmBtn : null));
    diffBox.scrollIntoView({ block: "nearest" });
    if (button) button.focus();
  }

  async function checkNow(w) {
    try {
      await post(`/watches/${w.id}/check`);
      notify(`Checking ${w.title || w.url}…`);
    } catch (e) {
      if (e.status === 409) notify("A check of this watch is already running.");
      else throw e;
    }
  }

  function editRow(w, tr) {
    const s = cronInput(w.schedule);
    const save = h("button", { class: "primary", type: "submit" }, "Save");
    const cancel = h("button", { type: "button", onclick: () => load() }, "Cancel");
    const f = h("form", { class: "row" }, h("div", { class: "field grow" }, h("label", { for: `sched-${w.id}` }, "Schedule (cron)"),
      Object.assign(s.input, { id: `sched-${w.id}` }), s.words), save, cancel);
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      act(save, async () => {
        await patch(`/watches/${w.id}`, { schedule: s.input.value.trim() || null });
        notify("Schedule saved.");
        await load();
      });
    });
    fill(tr, h("td", { colspan: "5" }, f));
    s.input.focus();
  }

  async function load() {
    const page = await get("/watches" + query({ limit: 500 }));
    if (!page.items.length) {
      fill(list, h("p", { class: "muted" }, "No watches yet."));
      return;
    }
    fill(list, table("Watches", ["Watch", "Schedule", "Last check", "Next check", ""], page.items.map((w) => {
      const tr = h("tr", { dataset: { watch: w.id } });
      fill(tr,
        h("td", {}, h("div", {}, w.title || w.url || w.item_id), h("div", { class: "muted small" }, `${w.kind} · ${w.provider}`, w.enabled ? "" : " · paused")),
        h("td", {}, h("code", {}, w.schedule || "default"), h("div", { class: "muted small" }, w.schedule ? cron(w.schedule) : "the default schedule")),
        h("td", { class: "last-result" }, h("time", { title: stamp(w.last_check_at) }, when(w.last_check_at)), h("div", { class: "small" }, result(w))),
        h("td", {}, w.enabled ? h("time", { title: stamp(w.next_check_at) }, when(w.next_check_at)) : "paused"),
        h("td", { class: "row" },
          h("button", { class: "link check-now", onclick: (e) => act(e.target, () => checkNow(w)) }, "Check now"),
          h("button", { class: "link dry-run", onclick: (e) => act(e.target, () => dryRun(w, e.target)) }, "Dry run"),
          h("button", { class: "link", onclick: () => editRow(w, tr) }, "Edit schedule"),
          h("button", { class: "link", onclick: (e) => act(e.target, async () => {
            await patch(`/watches/${w.id}`, { enabled: !w.enabled });
            await load();
          }) }, w.enabled ? "Pause" : "Resume"),
          h("button", { class: "link", onclick: (e) => act(e.target, async () => {
            if (!confirm(`Stop watching ${w.title || w.url}? Downloaded files stay.`)) return;
            await del(`/watches/${w.id}`);
            await load();
          }) }, "Delete")));
      return tr;
    })));
  }

  main.append(heading("Watches"), form, diffBox, list);
  await load();
  let timer = null;
  const off = events.subscribe((type) => {
    if (type !== "watch.checked") return;
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(() => {}), 100);
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}
