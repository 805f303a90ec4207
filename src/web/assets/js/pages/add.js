// Add: paste any link, see what it is (`GET /resolve`), choose tracks, format and quality,
// then download them or watch the link instead.

import { get, post, query } from "../api.js";
import { act, cover, field, fill, h, heading, notify, table } from "../ui.js";
import { clock } from "../words.js";
import { go } from "../app.js";

const FORMATS = [["", "Server default"], ["copy", "Keep the source's codec"], ["mp3", "MP3"], ["opus", "Opus"],
  ["flac", "FLAC"], ["vorbis", "Vorbis"], ["wav", "WAV"]];
const QUALITIES = [["", "Server default"], ["low", "Low"], ["medium", "Medium"], ["high", "High"], ["lossless", "Lossless"]];
const RELEASE_TYPES = ["album", "single", "compilation", "appears_on"];

function select(name, options) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v }, label)));
}

export async function render(main, params) {
  const link = h("input", { name: "url", type: "url", inputmode: "url", required: true,
    placeholder: "https://open.spotify.com/album/…, a podcast feed, a YouTube page…", autocomplete: "off" });
  const look = h("button", { class: "primary", type: "submit" }, "Look up");
  const result = h("div", { id: "resolved", "aria-live": "polite" });
  const form = h("form", { class: "card", role: "search" },
    field("Link", link, "Spotify, Deezer, MusicBrainz, Jamendo, a podcast feed, a web page yt-dlp knows, or a direct audio URL."),
    look);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(look, () => resolve(link.value.trim(), result));
  });
  main.append(heading("Add music"), form, result);
  if (params[0]) {
    link.value = params[0];
    await act(look, () => resolve(params[0], result));
  }
}

async function resolve(url, out) {
  fill(out, h("p", { class: "loading" }, "Looking it up…"));
  let r;
  try {
    r = await get("/resolve" + query({ url }));
  } catch (e) {
    fill(out, h("p", { class: "error-text", role: "alert" }, e.message));
    return;
  }
  const format = select("format", FORMATS);
  const quality = select("quality", QUALITIES);
  const boxes = [];
  const rows = (r.tracks || []).map((t, i) => {
    const box = h("input", { type: "checkbox", value: t.id, checked: !t.in_library && !t.unavailable,
      disabled: Boolean(t.unavailable), "aria-label": `Download ${t.title || t.id}` });
    boxes.push(box);
    box.addEventListener("change", count);
    return h("tr", { dataset: { track: t.id } },
      h("td", {}, box),
      h("td", { class: "num" }, String(i + 1)),
      h("td", {}, h("div", {}, t.title || t.id), h("div", { class: "muted small" }, (t.artists || []).join(", "))),
      h("td", { class: "num hide-narrow" }, t.duration_ms ? clock(t.duration_ms, true) : ""),
      h("td", {}, t.in_library ? h("span", { class: "status done" }, "in library")
        : t.unavailable ? h("span", { class: "status failed", title: t.unavailable }, "unavailable") : ""));
  });
  const typeBoxes = RELEASE_TYPES.map((t) => h("input", { type: "checkbox", value: t, checked: t === "album" }));
  const go1 = h("button", { class: "primary", id: "download" }, "Download");
  const watch = h("button", { id: "watch-instead" }, "Watch instead");
  const all = h("button", { class: "link", type: "button" }, "Select all");
  const none = h("button", { class: "link", type: "button" }, "Select none");
  all.addEventListener("click", () => { boxes.forEach((b) => { if (!b.disabled) b.checked = true; }); count(); });
  none.addEventListener("click", () => { boxes.forEach((b) => { b.checked = false; }); count(); });
  function chosen() {
    return boxes.filter((b) => b.checked).map((b) => b.value);
  }
  function count() {
    if (!boxes.length) return;
    const n = chosen().length;
    go1.textContent = n === boxes.length ? `Download all ${n}` : `Download ${n} of ${boxes.length}`;
    go1.disabled = n === 0;
  }
  count();
  go1.addEventListener("click", () => act(go1, async () => {
    const body = { url, format: format.value || undefined, quality: quality.value || undefined };
    if (boxes.length && chosen().length !== boxes.length) body.tracks = chosen();
    if (r.kind === "artist") body.release_types = typeBoxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const a = await post("/downloads", body);
      notify("Queued. Follow it in the queue.");
      go(`#/queue/${a.task_id}`);
    } catch (e) {
      const existing = e.details && e.details[0] && e.details[0].task_id;
      if (e.status === 409 && existing) {
        notify("That is already downloading; here it is.");
        go(`#/task/${existing}`);
      } else throw e;
    }
  }));
  watch.addEventListener("click", () => go(`#/watches/new/${encodeURIComponent(url)}`));
  const inLibrary = (r.tracks || []).filter((t) => t.in_library).length;
  fill(out, h("section", { class: "card", "aria-label": "What the link is" },
    h("div", { class: "row" },
      cover(r.cover_url, ""),
      h("div", { class: "grow" },
        h("h2", { id: "resolved-title" }, r.title || r.id),
        h("p", { class: "muted" }, `${r.kind} · ${r.provider}`,
          r.tracks && r.tracks.length ? ` · ${r.tracks.length} tracks` : "",
          inLibrary ? ` · ${inLibrary} already in the library` : ""))),
    r.releases && r.releases.length ? h("div", {},
      h("h3", {}, "Releases"),
      h("ul", {}, r.releases.map((x) => h("li", {}, `${x.title} (${x.release_type}${x.date ? ", " + x.date.slice(0, 4) : ""})`))),
      h("fieldset", {}, h("legend", {}, "Download these kinds of release"),
        RELEASE_TYPES.map((t, i) => h("label", { class: "inline" }, typeBoxes[i], t.replace("_", " "))))) : null,
    rows.length ? h("div", {}, h("div", { class: "row" }, all, none),
      table("Tracks", ["", "#", "Title", ["Length", "hide-narrow"], ""], rows, { stack: false })) : null,
    h("div", { class: "row" }, field("Format", format), field("Quality", quality)),
    h("div", { class: "row" }, go1, watch)));
}
