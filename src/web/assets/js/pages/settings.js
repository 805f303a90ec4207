// Settings (admin): worker limits, watch settings, provider credentials (Jamendo key,
// Spotify sign-in), users.

import { get, post, put, del, query } from "../api.js";
import { act, field, fill, h, heading, notify, table } from "../ui.js";
import { cron, stamp, when } from "../words.js";

function numberInput(name, value) {
  return h("input", { type: "number", min: "0", name, value: value ?? "" });
}

async function limits(box) {
  const c = await get("/config");
  const w = c.runtime.workers;
  const inputs = Object.fromEntries(["io_concurrency", "cpu_concurrency", "per_host_connections", "per_host_requests_per_minute"]
    .map((k) => [k, numberInput(k, w[k])]));
  const save = h("button", { class: "primary", type: "submit" }, "Save limits");
  const form = h("form", {},
    h("div", { class: "row" },
      field("Downloads at once", inputs.io_concurrency), field("Processing at once", inputs.cpu_concurrency),
      field("Connections per host", inputs.per_host_connections), field("Requests per minute per host", inputs.per_host_requests_per_minute, "0 = no budget")),
    save);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, async () => {
      const workers = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, Number(i.value)]));
      await put("/config", { workers });
      notify("Limits saved; they apply now.");
    });
  });
  fill(box, h("h2", {}, "Limits"), form);
}

async function watchSettings(box) {
  const c = await get("/config/watch");
  const enabled = h("input", { type: "checkbox", name: "watch_enabled", checked: c.enabled });
  const schedule = h("input", { name: "default_schedule", value: c.default_schedule });
  const words = h("small", { "aria-live": "polite" }, cron(c.default_schedule));
  schedule.addEventListener("input", () => { words.textContent = cron(schedule.value); });
  const max = numberInput("max_concurrent_checks", c.max_concurrent_checks);
  const jitter = h("input", { name: "jitter", value: c.jitter });
  const retry = h("input", { name: "retry_failed_after", value: c.retry_failed_after });
  const save = h("button", { class: "primary", type: "submit" }, "Save watch settings");
  const form = h("form", {},
    h("label", { class: "inline" }, enabled, "Run scheduled checks"),
    h("div", { class: "field" }, h("label", { for: "default-schedule" }, "Default schedule (cron)"), Object.assign(schedule, { id: "default-schedule" }), words),
    h("div", { class: "row" }, field("Checks at once", max), field("Random delay", jitter, "e.g. 30s"), field("Retry failed items after", retry, "e.g. 1day")),
    save);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(save, async () => {
      await put("/config/watch", { enabled: enabled.checked, default_schedule: schedule.value.trim(),
        max_concurrent_checks: Number(max.value), jitter: jitter.value.trim(), retry_failed_after: retry.value.trim() });
      notify("Watch settings saved.");
    });
  });
  fill(box, h("h2", {}, "Watches"), form);
}

async function credentials(box) {
  const [creds, providers] = await Promise.all([get("/credentials"), get("/providers")]);
  // The credentials musicd's sources read, stored sealed (`PUT /credentials/{provider}/{name}`).
  const which = h("select", { name: "credential" },
    [["jamendo/client_id", "Jamendo client id"], ["spotify/client_id", "Spotify client id"],
      ["spotify/client_secret", "Spotify client secret"]].map(([v, label]) => h("option", { value: v }, label)));
  const value = h("input", { name: "credential_value", type: "password", autocomplete: "off", required: true });
  const saveJ = h("button", { type: "submit" }, "Save");
  const jForm = h("form", { class: "row", id: "credential-form" }, field("Credential", which),
    h("div", { class: "grow" }, field("Value", value, "Stored encrypted; shown masked.")), saveJ);
  jForm.addEventListener("submit", (e) => {
    e.preventDefault();
    act(saveJ, async () => {
      await put(`/credentials/${which.value}`, { value: value.value.trim() });
      jForm.reset();
      notify("Credential saved.");
      await credentials(box);
    });
  });
  const spotify = providers.items.find((p) => p.name === "spotify");
  const connect = h("button", { id: "spotify-connect" }, "Connect a Spotify account");
  connect.addEventListener("click", () => act(connect, async () => {
    const r = await post("/providers/spotify/connect");
    window.open(r.authorize_url, "_blank", "noopener");
    notify("Finish signing in to Spotify in the new tab; it returns to musicd.");
  }));
  fill(box, h("h2", {}, "Sources and credentials"),
    table("Sources", ["Source", "Status"], providers.items.map((p) => h("tr", {},
      h("td", {}, h("b", {}, p.name), h("div", { class: "muted small" }, p.description)),
      h("td", {}, p.available ? h("span", { class: "status done" }, "ready") : h("span", { class: "status failed" }, "not set up"),
        p.problem ? h("div", { class: "small" }, p.problem) : null,
        p.paused_until ? h("div", { class: "small" }, `paused until ${stamp(p.paused_until)}`) : null)))),
    h("h3", {}, "Stored credentials"),
    creds.items.length ? table("Stored credentials", ["Provider", "Name", "Value", "Updated"], creds.items.map((c) => h("tr", {},
      h("td", {}, c.provider), h("td", {}, c.name), h("td", {}, h("code", {}, c.masked)),
      h("td", {}, when(c.updated_at), " ", h("button", { class: "link", onclick: (e) => act(e.target, async () => {
        await del(`/credentials/${c.provider}/${c.name}`);
        await credentials(box);
      }) }, "Delete")))))
      : h("p", { class: "muted" }, "None stored."),
    jForm,
    spotify ? h("p", {}, connect, " ", h("span", { class: "muted small" }, "for private playlists")) : null);
}

async function users(box, session) {
  const page = await get("/users" + query({ limit: 200 }));
  const name = h("input", { name: "new_username", required: true, autocomplete: "off" });
  const pass = h("input", { name: "new_user_password", type: "password", required: true, minlength: "8", autocomplete: "new-password" });
  const role = h("select", { name: "new_user_role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
  const add = h("button", { type: "submit" }, "Add user");
  const form = h("form", { class: "row" }, h("div", { class: "grow" }, field("Username", name)), h("div", { class: "grow" }, field("Password", pass)), field("Role", role), add);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(add, async () => {
      await post("/users", { username: name.value.trim(), password: pass.value, role: role.value });
      notify(`User ${name.value.trim()} added.`);
      await users(box, session);
    });
  });
  fill(box, h("h2", {}, "Users"),
    table("Users", ["User", "Role", "Since", ""], page.items.map((u) => h("tr", { dataset: { user: u.username } },
      h("td", {}, u.username), h("td", {}, u.role), h("td", {}, when(u.created_at)),
      h("td", {}, u.id === session.user.id ? h("span", { class: "muted" }, "you") : [
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          await put(`/users/${u.id}/role`, { role: u.role === "admin" ? "user" : "admin" });
          await users(box, session);
        }) }, u.role === "admin" ? "Make user" : "Make admin"),
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          const pw = prompt(`New password for ${u.username} (8 characters or more):`);
          if (!pw) return;
          await put(`/users/${u.id}/password`, { new_password: pw });
          notify(`Password of ${u.username} changed.`);
        }) }, "Set password"),
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          if (!confirm(`Delete ${u.username}?`)) return;
          await del(`/users/${u.id}`);
          await users(box, session);
        }) }, "Delete"),
      ])))),
    form);
}

export async function render(main, _params, session) {
  main.append(heading("Settings"));
  if (session.user.role !== "admin") {
    main.append(h("p", { class: "error-text", role: "alert" }, "Settings are for admins."));
    return;
  }
  const boxes = [0, 1, 2, 3].map(() => h("section", { class: "card" }, h("p", { class: "loading" }, "Loading…")));
  main.append(...boxes, h("p", { class: "muted small" }, "API keys are under Account. Notifications arrive with a later release."));
  const fail = (box) => (e) => fill(box, h("p", { class: "error-text" }, e.message));
  await Promise.all([
    limits(boxes[0]).catch(fail(boxes[0])),
    watchSettings(boxes[1]).catch(fail(boxes[1])),
    credentials(boxes[2]).catch(fail(boxes[2])),
    users(boxes[3], session).catch(fail(boxes[3])),
  ]);
}
