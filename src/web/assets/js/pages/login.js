// Sign in. On a first start, says where musicd wrote the initial password.

import { get, post } from "../api.js";
import { field, h, act } from "../ui.js";
import { signedIn, go } from "../app.js";

export async function render(main) {
  let status = {};
  try {
    status = await get("/auth/status", { on401: false });
  } catch (_) {
    // the form still works
  }
  const user = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error-text", role: "alert" });
  const button = h("button", { class: "primary", type: "submit" }, "Sign in");
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to musicd"),
    status.initial_password_file
      ? h("p", { class: "muted", id: "first-run" },
        "First start: the account ", h("b", {}, status.initial_admin || "admin"),
        " has a random password, written to ", h("code", {}, status.initial_password_file),
        " on the server. Sign in with it, then choose your own under Account.")
      : null,
    field("Username", user),
    field("Password", pass),
    error,
    button,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    error.textContent = "";
    act(button, async () => {
      try {
        const info = await post("/auth/session", { username: user.value.trim(), password: pass.value }, { on401: false });
        signedIn(info);
        go(info.user.must_change_password ? "#/account" : "#/add");
      } catch (err) {
        error.textContent = err.message;
        pass.select();
      }
    });
  });
  main.append(form);
  user.focus();
}
