// Library: artists, albums with covers, tracks; search; play in the browser through a signed
// link (seeking works: the file is served with Range); edit tags; delete (owner or admin).

import { get, post, patch, del, query } from "../api.js";
import { act, cover, field, fill, h, heading, notify, table } from "../ui.js";
import { bytes, clock } from "../words.js";
import { go } from "../app.js";

const player = { audio: null, bar: null };

function tabs(current) {
  return h("nav", { class: "tabs", "aria-label": "Library views" },
    [["tracks", "Tracks"], ["albums", "Albums"], ["artists", "Artists"]].map(([k, label]) =>
      h("a", { href: `#/library/${k}`, "aria-current": k === current ? "page" : null }, label)));
}

/** The one player at the bottom of the library: a signed link, so `<audio>` needs no header. */
async function play(t) {
  const link = await post(`/library/tracks/${t.id}/link`);
  if (!player.audio) {
    player.audio = h("audio", { controls: true, preload: "metadata", id: "player" });
    player.bar = h("div", { class: "card", id: "now-playing", role: "region", "aria-label": "Player" });
  }
  fill(player.bar, h("p", {}, "Playing ", h("b", { id: "now-playing-title" }, t.title || t.path), t.artist ? ` — ${t.artist}` : ""), player.audio);
  const main = document.getElementById("main");
  if (!main.contains(player.bar)) main.append(player.bar);
  player.audio.src = link.url;
  try {
    await player.audio.play();
  } catch (_) {
    // autoplay refused: the controls are there
  }
}

function trackRows(items, session) {
  return items.map((t) => h("tr", { dataset: { track: t.id } },
    h("td", {}, h("button", { class: "link play", "aria-label": `Play ${t.title || t.path}`, onclick: (e) => act(e.target, () => play(t)) }, "▶")),
    h("td", {}, h("div", {}, t.title || t.path.split("/").pop()), h("div", { class: "muted small" }, t.artist || "", t.album ? ` · ${t.album}` : "")),
    h("td", { class: "num hide-narrow" }, t.duration_ms ? clock(t.duration_ms, true) : ""),
    h("td", { class: "hide-narrow" }, t.format),
    h("td", {}, t.owner_id === session.user.id || session.user.role === "admin"
      ? h("a", { href: `#/library/track/${t.id}` }, "Edit") : "")));
}

async function tracksView(main, session, params) {
  const q = h("input", { type: "search", name: "q", placeholder: "Title, artist or album", value: params.q || "" });
  const out = h("div", {});
  const more = h("button", { hidden: true }, "More");
  let cursor = null;
  const body = h("tbody", {});
  async function load(reset) {
    if (reset) {
      cursor = null;
      body.replaceChildren();
    }
    const page = await get("/library/tracks" + query({ q: q.value.trim(), limit: 100, cursor, album: params.album, artist: params.artist }));
    body.append(...trackRows(page.items, session));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    fill(out, body.children.length ? table("Tracks", ["", "Title", "Length", "Format", ""], body) : h("p", { class: "muted" }, "No tracks."));
  }
  const form = h("form", { role: "search", class: "row" }, h("div", { class: "grow" }, field("Search the library", q)), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(null, () => load(true));
  });
  more.addEventListener("click", () => act(more, () => load(false)));
  main.append(form, out, more);
  await load(true);
}

async function albumsView(main, artist) {
  const page = await get("/library/albums" + query({ limit: 500, artist }));
  main.append(page.items.length ? h("div", { class: "grid" }, page.items.map((a) => h("a", { class: "tile", href: `#/library/album/${a.id}` },
    cover(`/api/v1/library/albums/${a.id}/cover`, ""),
    h("b", {}, a.title), h("span", { class: "muted small" }, a.artist || "", a.year ? ` · ${a.year}` : "", ` · ${a.tracks} tracks`))))
    : h("p", { class: "muted" }, "No albums yet."));
}

async function artistsView(main) {
  const page = await get("/library/artists" + query({ limit: 500 }));
  main.append(page.items.length ? h("ul", {}, page.items.map((a) => h("li", {},
    h("a", { href: `#/library/artist/${a.id}` }, a.name), h("span", { class: "muted" }, ` (${a.tracks})`))))
    : h("p", { class: "muted" }, "No artists yet."));
}

async function albumView(main, session, id) {
  const a = await get(`/library/albums/${id}`);
  main.append(h("div", { class: "row card" }, cover(`/api/v1/library/albums/${id}/cover`, `Cover of ${a.title}`),
    h("div", { class: "grow" }, h("h2", {}, a.title), h("p", { class: "muted" }, a.artist || "", a.year ? ` · ${a.year}` : ""))),
  table(`Tracks of ${a.title}`, ["", "Title", "Length", "Format", ""], trackRows(a.tracks, session)));
}

async function editView(main, session, id) {
  let t;
  try {
    t = await get(`/library/tracks/${id}`);
  } catch (e) {
    main.append(h("p", { class: "error-text", role: "alert" }, e.message));
    return;
  }
  if (t.owner_id !== session.user.id && session.user.role !== "admin") {
    main.append(h("p", { class: "error-text", role: "alert", id: "not-yours" },
      "You can edit only the tracks you added; this one is someone else's."));
    return;
  }
  const inputs = {
    title: h("input", { name: "title", value: t.title || "" }),
    artists: h("input", { name: "artists", value: t.artist || "" }),
    album: h("input", { name: "album", value: t.album || "" }),
    album_artist: h("input", { name: "album_artist", value: t.album_artist || "" }),
    track_number: h("input", { name: "track_number", type: "number", min: "0", value: t.track_number ?? "" }),
    disc_number: h("input", { name: "disc_number", type: "number", min: "0", value: t.disc_number ?? "" }),
    date: h("input", { name: "date", value: t.year ? String(t.year) : "", placeholder: "YYYY or YYYY-MM-DD" }),
    genres: h("input", { name: "genres", value: t.genre || "" }),
  };
  const save = h("button", { class: "primary", type: "submit" }, "Save tags");
  const remove = h("button", { class: "danger", type: "button" }, "Delete track");
  const form = h("form", { class: "card", id: "tag-form" },
    h("p", { class: "muted small" }, t.path, " · ", bytes(t.size), " · ", t.format),
    field("Title", inputs.title), field("Artists", inputs.artists, "Separate several with “; ”."),
    field("Album", inputs.album), field("Album artist", inputs.album_artist),
    h("div", { class: "row" }, field("Track", inputs.track_number), field("Disc", inputs.disc_number), field("Date", inputs.date)),
    field("Genres", inputs.genres, "Separate several with “; ”."),
    h("div", { class: "row" }, save, remove));
  const list = (s) => s.split(";").map((x) => x.trim()).filter(Boolean);
  const num = (s) => (s === "" ? undefined : Number(s));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, async () => {
      await patch(`/library/tracks/${id}`, {
        title: inputs.title.value, artists: list(inputs.artists.value), album: inputs.album.value,
        album_artist: inputs.album_artist.value, track_number: num(inputs.track_number.value),
        disc_number: num(inputs.disc_number.value), date: inputs.date.value || undefined, genres: list(inputs.genres.value),
      });
      notify("Tags saved to the file.");
    });
  });
  remove.addEventListener("click", () => act(remove, async () => {
    if (!confirm(`Delete ${t.title || t.path} from the library and the disk?`)) return;
    await del(`/library/tracks/${id}`);
    notify("Track deleted.");
    go("#/library");
  }));
  main.append(h("h2", {}, t.title || t.path), form);
}

export async function render(main, params, session) {
  const [view = "tracks", id] = params;
  main.append(heading("Library"), tabs(["tracks", "albums", "artists"].includes(view) ? view : ""));
  if (view === "albums") await albumsView(main);
  else if (view === "artists") await artistsView(main);
  else if (view === "artist") await albumsView(main, id);
  else if (view === "album") await albumView(main, session, id);
  else if (view === "track") await editView(main, session, id);
  else await tracksView(main, session, {});
  return () => {
    if (player.audio) player.audio.pause();
  };
}
