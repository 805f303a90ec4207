// The app's frame: who is signed in, the hash routes, the menu, and which page shows.

import { get, del, setCsrf } from "./api.js";
import * as events from "./events.js";
import { fill, h, notify } from "./ui.js";

const PAGES = {
  login: () => import("./pages/login.js"),
  add: () => import("./pages/add.js"),
  queue: () => import("./pages/queue.js"),
  task: () => import("./pages/task.js"),
  watches: () => import("./pages/watches.js"),
  library: () => import("./pages/library.js"),
  uploads: () => import("./pages/uploads.js"),
  history: () => import("./pages/history.js"),
  settings: () => import("./pages/settings.js"),
  account: () => import("./pages/account.js"),
  notifications: () => import("./pages/notifications.js"),
};

const TITLES = {
  login: "Sign in", add: "Add", queue: "Queue", task: "Task", watches: "Watches", library: "Library",
  uploads: "Uploads", history: "History", settings: "Settings", account: "Account",
  notifications: "Notifications",
};

/** What every page gets: the account and ways to move on. */
export const session = { user: null, auth: true };

let cleanup = null;
let rendering = 0;

/** Starts the signed-in app with a session from `POST` or `GET /auth/session`. */
export function signedIn(info) {
  session.user = info.user;
  setCsrf(info.csrf_token);
  document.querySelector(".top").hidden = false;
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = info.user.role !== "admin";
  document.getElementById("account-link").textContent = info.user.username;
  events.start();
}

/** Signs out (or notes that the session ended) and shows the sign-in page. */
export async function signOut(ended = false) {
  if (!ended) {
    try {
      await del("/auth/session");
    } catch (_) {
      // the session is gone either way
    }
  }
  events.stop();
  session.user = null;
  setCsrf("");
  document.querySelector(".top").hidden = true;
  if (ended) notify("Your session ended; sign in again.", "error");
  go("#/login");
}

/** Navigates to a route. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = parts[0] || "add";
  return { name: PAGES[name] ? name : "add", params: parts.slice(1) };
}

async function route() {
  const { name, params } = parse();
  if (!session.user && name !== "login") return go("#/login");
  const mine = ++rendering;
  if (cleanup) cleanup();
  cleanup = null;
  document.title = `${TITLES[name]} · musicd`;
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.getAttribute("href") === "#/" + name);
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  const nav = document.getElementById("nav");
  nav.classList.remove("open");
  document.querySelector(".menu-toggle").setAttribute("aria-expanded", "false");
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  try {
    const page = await PAGES[name]();
    if (mine !== rendering) return;
    fill(main);
    cleanup = (await page.render(main, params, session)) || null;
  } catch (e) {
    if (mine !== rendering) return;
    fill(main, h("h1", { tabindex: "-1" }, "Something went wrong"), h("p", { class: "error-text" }, e.message));
  } finally {
    if (mine === rendering) main.removeAttribute("aria-busy");
  }
  if (mine !== rendering) return;
  const title = document.getElementById("page-title");
  if (title) title.focus();
  document.body.dataset.page = name;
  document.body.dataset.ready = String(mine);
  performance.mark("musicd:ready", { detail: name });
}

async function boot() {
  const toggle = document.querySelector(".menu-toggle");
  toggle.addEventListener("click", () => {
    const open = document.getElementById("nav").classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("musicd:signed-out", () => {
    if (session.user) signOut(true);
  });
  try {
    const status = await get("/auth/status", { on401: false });
    session.auth = status.auth;
    signedIn(await get("/auth/session", { on401: false }));
  } catch (_) {
    // not signed in: the route below shows the sign-in page
  }
  if (session.user && parse().name === "login") location.hash = "#/add";
  await route();
}

boot();
