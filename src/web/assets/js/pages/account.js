// One's own account: change the password, API keys for scripts (shown once), sign out.

import { get, post, put, del } from "../api.js";
import { act, field, fill, h, heading, notify, table } from "../ui.js";
import { when, stamp } from "../words.js";
import { signOut } from "../app.js";

export async function render(main, _params, session) {
  const current = h("input", { type: "password", autocomplete: "current-password", required: true, name: "current_password" });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: "8", name: "new_password" });
  const again = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: "8", name: "new_password_again" });
  const msg = h("p", { role: "status" });
  const save = h("button", { class: "primary", type: "submit" }, "Change password");
  const form = h("form", { class: "card", id: "password-form" },
    h("h2", {}, "Password"),
    field("Current password", current),
    field("New password", next, "At least 8 characters."),
    field("New password again", again),
    msg, save);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    msg.className = "";
    if (next.value !== again.value) {
      msg.className = "error-text";
      msg.textContent = "The two new passwords differ.";
      return;
    }
    act(save, async () => {
      try {
        await put("/auth/password", { current_password: current.value, new_password: next.value });
        form.reset();
        msg.className = "ok-text";
        msg.textContent = "Password changed. Your other sign-ins were signed out.";
      } catch (err) {
        msg.className = "error-text";
        msg.textContent = err.message;
      }
    });
  });

  const keys = h("div", {});
  const keyName = h("input", { name: "key_name", placeholder: "cron on the NAS", required: true });
  const scope = h("select", { name: "key_scope" },
    h("option", { value: "read" }, "read"), h("option", { value: "write", selected: true }, "write"),
    session.user.role === "admin" ? h("option", { value: "admin" }, "admin") : null);
  const shown = h("div", { "aria-live": "polite" });
  const create = h("button", { type: "submit" }, "Create key");
  const keyForm = h("form", { class: "row" }, h("div", { class: "grow" }, field("Name", keyName)), field("Scope", scope), create);
  keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    act(create, async () => {
      const k = await post("/api-keys", { name: keyName.value.trim(), scopes: [scope.value] });
      keyForm.reset();
      fill(shown, h("div", { class: "card" },
        h("p", {}, "Copy this key now; it is not shown again:"),
        h("p", { class: "secret", id: "new-key" }, k.key)));
      await loadKeys();
    });
  });
  async function loadKeys() {
    const list = await get("/api-keys");
    const items = list.items || list;
    fill(keys, items.length
      ? table("API keys", ["Name", "Scopes", "Created", "Last used", ""], items.map((k) => h("tr", {},
        h("td", {}, k.name), h("td", {}, (k.scopes || []).join(", ")),
        h("td", { title: stamp(k.created_at) }, when(k.created_at)),
        h("td", {}, k.last_used_at ? when(k.last_used_at) : "never"),
        h("td", {}, h("button", { class: "link", onclick: (e) => act(e.target, async () => {
          await del(`/api-keys/${k.id}`);
          notify(`Key ${k.name} deleted.`);
          await loadKeys();
        }) }, "Delete")))))
      : h("p", { class: "muted" }, "No API keys yet."));
  }

  main.append(
    heading("Account"),
    h("p", {}, "Signed in as ", h("b", {}, session.user.username), ` (${session.user.role}).`),
    form,
    h("section", { class: "card" }, h("h2", {}, "API keys"),
      h("p", { class: "muted small" }, "For scripts and the musicd CLI: send as X-API-Key."), keyForm, shown, keys),
    h("button", { id: "sign-out", onclick: () => signOut() }, "Sign out"),
  );
  await loadKeys();
}
