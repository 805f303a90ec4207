// Notifications: one's webhooks and push targets (ntfy, Gotify, Discord), what they hear, a
// test message, and each one's recent delivery attempts.

import { get, post, patch, del } from "../api.js";
import { act, field, fill, h, heading, notify, table } from "../ui.js";
import { when, stamp } from "../words.js";

const EVENTS = [
  ["task.completed", "A request finished"],
  ["task.failed", "A request failed"],
  ["task.needs_review", "A request needs review"],
  ["upload.completed", "An upload was placed"],
  ["upload.failed", "An upload failed"],
  ["watch.new_items", "A watch found new items"],
  ["track.completed", "Every track (many messages)"],
  ["track.failed", "Every failed track"],
];
const SYSTEM = [
  ["system.health", "Database or queue down, and back"],
  ["disk.low", "Disk nearly full"],
  ["provider.paused", "A provider asked us to wait"],
];
const DEFAULTS = ["task.completed", "task.failed", "task.needs_review", "upload.completed", "upload.failed", "watch.new_items"];
const STATES = { ok: "ok", failing: "failing", disabled: "disabled" };

export async function render(main, _params, session) {
  const url = h("input", { name: "hook_url", required: true, placeholder: "ntfys://ntfy.example.org/music" });
  const kind = h("select", { name: "hook_kind" },
    h("option", { value: "" }, "from the URL"),
    ...["webhook", "ntfy", "gotify", "discord"].map((k) => h("option", { value: k }, k)));
  const token = h("input", { name: "hook_token", type: "password", autocomplete: "off", placeholder: "if not in the URL" });
  const choices = [...EVENTS, ...(session.user.role === "admin" ? SYSTEM : [])].map(([value, label]) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "event", value, checked: DEFAULTS.includes(value) || undefined }), ` ${label}`));
  const shown = h("div", { "aria-live": "polite" });
  const add = h("button", { class: "primary", type: "submit" }, "Add");
  const form = h("form", { class: "card", id: "hook-form" },
    h("h2", {}, "Add a target"),
    field("URL", url, "https://… for a signed webhook, or ntfy://, ntfys://, gotify://, gotifys://, discord:// (Apprise style)."),
    h("div", { class: "row" }, field("Kind", kind), h("div", { class: "grow" }, field("Token", token))),
    h("fieldset", {}, h("legend", {}, "Tell me when"), ...choices),
    add, shown);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(add, async () => {
      const events = [...form.querySelectorAll("input[name=event]:checked")].map((c) => c.value);
      const body = { url: url.value.trim(), events };
      if (kind.value) body.kind = kind.value;
      if (token.value) body.token = token.value;
      const hook = await post("/webhooks", body);
      form.reset();
      fill(shown, hook.secret
        ? h("div", { class: "card" }, h("p", {}, "The signing secret, shown once:"), h("p", { class: "secret", id: "hook-secret" }, hook.secret))
        : h("p", { class: "ok-text" }, `${hook.name} added.`));
      await load();
    });
  });

  const list = h("div", { id: "hooks" });
  async function load() {
    const hooks = await get("/webhooks");
    fill(list, hooks.length
      ? table("Targets", ["Name", "Kind", "Hears", "State", "Last delivered", ""], hooks.map(row))
      : h("p", { class: "muted" }, "No targets yet: nothing leaves musicd but the live events."));
  }
  function row(hook) {
    const log = h("div", {});
    const state = hook.state === "disabled" && hook.disabled_reason ? `disabled: ${hook.disabled_reason}` : STATES[hook.state] || hook.state;
    return h("tr", { "data-hook": hook.id },
      h("td", {}, hook.name, h("div", { class: "muted small" }, hook.url)),
      h("td", {}, hook.kind),
      h("td", { class: "small" }, hook.events.join(", ")),
      h("td", { class: hook.state === "ok" ? "" : "error-text" }, state),
      h("td", { title: hook.last_delivery_at ? stamp(hook.last_delivery_at) : "" }, hook.last_delivery_at ? when(hook.last_delivery_at) : "never"),
      h("td", {},
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          await post(`/webhooks/${hook.id}/test`, {});
          notify(`Test message queued for ${hook.name}.`);
          setTimeout(() => deliveries(hook, log), 1500);
        }) }, "Test"),
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          await patch(`/webhooks/${hook.id}`, { enabled: !hook.enabled });
          await load();
        }) }, hook.enabled ? "Turn off" : "Turn on"),
        h("button", { class: "link", onclick: () => deliveries(hook, log) }, "Deliveries"),
        h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          await del(`/webhooks/${hook.id}`);
          notify(`${hook.name} deleted.`);
          await load();
        }) }, "Delete"),
        log));
  }
  async function deliveries(hook, into) {
    const attempts = await get(`/webhooks/${hook.id}/deliveries?limit=10`);
    fill(into, attempts.length
      ? h("ul", { class: "small deliveries" }, ...attempts.map((a) => h("li", {},
        `${when(a.at)}: ${a.event} #${a.attempt}, ${a.outcome}`,
        a.status_code ? `, HTTP ${a.status_code}` : "", `, ${a.latency_ms} ms`, a.error ? ` (${a.error})` : "")))
      : h("p", { class: "muted small" }, "No attempts yet."));
  }

  main.append(heading("Notifications"),
    h("p", { class: "muted" }, "Your targets hear only your own downloads, uploads and watches."),
    form, list);
  await load();
}
