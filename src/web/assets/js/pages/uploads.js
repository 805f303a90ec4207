// Uploads: drop files or folders, or pick them; each goes up over tus with its progress and
// resumes after a dropped connection or a reload (pick the same file again).

import { get } from "../api.js";
import * as tus from "../tus.js";
import { act, announce, bar, fill, h, heading, notify } from "../ui.js";
import { bytes } from "../words.js";

const AUDIO = /\.(mp3|flac|ogg|oga|opus|m4a|mp4|aac|wav|wv|aiff?|ape|mka|webm)$/i;

/** Files of a drop, folders walked (webkitGetAsEntry). */
async function dropped(items) {
  const files = [];
  const walk = (entry, prefix) => new Promise((resolve) => {
    if (entry.isFile) entry.file((f) => { files.push(prefix ? new File([f], prefix + f.name, { type: f.type, lastModified: f.lastModified }) : f); resolve(); }, resolve);
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      const all = [];
      const next = () => reader.readEntries(async (batch) => {
        if (!batch.length) {
          for (const e of all) await walk(e, prefix + entry.name + "/");
          resolve();
        } else {
          all.push(...batch);
          next();
        }
      }, resolve);
      next();
    } else resolve();
  });
  const entries = [...items].map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.every(Boolean)) {
    for (const e of entries) await walk(e, "");
    return files;
  }
  return [...items].map((i) => i.getAsFile()).filter(Boolean);
}

export async function render(main) {
  const list = h("ul", { id: "upload-list", class: "plain" });
  const pick = h("input", { type: "file", id: "upload-files", multiple: true, accept: "audio/*,.flac,.opus,.m4a,.wv,.ape,.mka" });
  const pickDir = h("input", { type: "file", id: "upload-folder", webkitdirectory: true, multiple: true });
  const zone = h("div", { class: "drop", id: "drop-zone", tabindex: "0", role: "group", "aria-label": "Drop files or folders here" },
    h("p", {}, "Drop audio files or folders here, or"),
    h("div", { class: "row", style: null },
      h("label", { class: "button", for: "upload-files" }, "Choose files"), " ",
      h("label", { class: "button", for: "upload-folder" }, "Choose a folder")),
    pick, pickDir);
  // Visually hidden, not `hidden`: the labels open them, and they stay focusable.
  pick.className = "sr-only";
  pickDir.className = "sr-only";
  const quota = h("p", { class: "muted small" });
  const resumable = h("div", {});

  function showUnfinished() {
    const open = tus.unfinished();
    fill(resumable, open.length ? h("div", { class: "card", id: "unfinished" },
      h("p", {}, "Unfinished uploads: choose the same file again to go on from where it stopped."),
      h("ul", {}, open.map((u) => h("li", {}, `${u.name}: ${bytes(u.sent)} of ${bytes(u.size)} `,
        h("button", { class: "link", onclick: () => { tus.forget(u.name); showUnfinished(); } }, "Forget"))))) : null);
  }

  async function send(files) {
    const audio = files.filter((f) => AUDIO.test(f.name) || (f.type || "").startsWith("audio/"));
    const skipped = files.length - audio.length;
    if (skipped) notify(`${skipped} file(s) skipped: not audio by their name.`);
    for (const f of audio) {
      const name = f.webkitRelativePath || f.name;
      const state = h("span", { class: "small muted" }, "starting…");
      const progress = bar(0, `${name} upload`);
      const item = h("li", { class: "card", dataset: { file: name } }, h("div", {}, h("b", {}, name), " ", state), progress);
      list.prepend(item);
      const ctl = new AbortController();
      const stop = h("button", { class: "link", onclick: () => ctl.abort() }, "Stop");
      item.append(stop);
      const started = performance.now();
      try {
        const task = await tus.upload(f, (sent, total, resumedAt) => {
          const p = total ? (sent / total) * 100 : 100;
          progress.value = p;
          progress.textContent = `${p.toFixed(0)} %`;
          const rate = sent / Math.max(0.001, (performance.now() - started) / 1000);
          item.dataset.sent = String(sent);
          if (resumedAt !== null) item.dataset.resumedAt = String(resumedAt);
          state.textContent = `${bytes(sent)} of ${bytes(total)}` + (resumedAt ? ` (resumed at ${bytes(resumedAt)})` : "") +
            (sent < total ? ` · ${bytes(rate)}/s` : "");
        }, ctl.signal);
        item.dataset.task = task || "";
        item.dataset.done = "true";
        stop.remove();
        fill(state, "uploaded; processing — ", task ? h("a", { href: `#/task/${task}` }, "follow it") : "");
        announce(`${name} uploaded`);
      } catch (e) {
        state.className = "error-text small";
        state.textContent = e.name === "AbortError" ? "stopped; choose it again to resume" : `${e.message}; choose it again to resume`;
      }
      showUnfinished();
    }
    refreshQuota();
  }

  async function refreshQuota() {
    try {
      const q = await get("/uploads/quota");
      quota.textContent = q.limit ? `Used ${bytes(q.used)} of ${bytes(q.limit)}.` : `Used ${bytes(q.used)}; no quota.`;
    } catch (_) {
      quota.textContent = "";
    }
  }

  pick.addEventListener("change", () => { const f = [...pick.files]; pick.value = ""; send(f); });
  pickDir.addEventListener("change", () => { const f = [...pickDir.files]; pickDir.value = ""; send(f); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    act(null, async () => send(e.dataTransfer.items && e.dataTransfer.items.length ? await dropped(e.dataTransfer.items) : [...e.dataTransfer.files]));
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick.click(); } });
  main.append(heading("Uploads"), quota, resumable, zone, list);
  showUnfinished();
  refreshQuota();
}
