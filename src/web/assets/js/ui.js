// Small DOM helpers: building elements, announcing to screen readers, status messages.

/**
 * Builds an element: h("button", {class: "x", onclick: f}, "text", child…). Attributes
 * starting with "on" become listeners; `null`/`false` children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says something to screen readers through the polite live region. */
export function announce(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

/** A status line shown at the top of the page (errors stay until dismissed). */
export function notify(text, kind = "info") {
  const box = document.getElementById("notice");
  if (!box) return;
  const close = h("button", { class: "link", "aria-label": "Dismiss", onclick: () => item.remove() }, "×");
  const item = h("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, h("span", {}, text), close);
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 5000);
}

/** Runs an async action from a button: disables it meanwhile, reports a failure. */
export async function act(button, f) {
  if (button) button.disabled = true;
  try {
    return await f();
  } catch (e) {
    if (e.name !== "AbortError") notify(e.message, "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", {}, hint) : null);
}

/** A page heading that takes focus, so keyboard and screen-reader users land on it. */
export function heading(text) {
  return h("h1", { tabindex: "-1", id: "page-title" }, text);
}

/**
 * A table from rows (or a tbody the caller keeps filling), with a caption for screen
 * readers; on a phone its rows stack (unless `stack` is false: a few narrow columns).
 */
export function table(caption, head, rows, { stack = true } = {}) {
  const body = rows instanceof HTMLTableSectionElement ? rows : h("tbody", {}, rows);
  return h(
    "table",
    { class: stack ? "stack" : null },
    h("caption", { class: "sr-only" }, caption),
    // A heading is its text, or [text, class] ("hide-narrow" with its cells).
    h("thead", {}, h("tr", {}, head.map((c) => (Array.isArray(c)
      ? h("th", { scope: "col", class: c[1] }, c[0]) : h("th", { scope: "col" }, c))))),
    body,
  );
}

/** A progress bar with its text. */
export function bar(percent, label) {
  const p = Math.max(0, Math.min(100, percent || 0));
  return h("progress", { max: "100", value: String(p), "aria-label": label || "progress" }, `${p.toFixed(0)} %`);
}

/** A cover image that hides itself when it cannot load. */
export function cover(url, alt) {
  if (!url) return h("div", { class: "cover none", "aria-hidden": "true" }, "♪");
  const img = h("img", { class: "cover", src: url, alt: alt || "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(h("div", { class: "cover none", "aria-hidden": "true" }, "♪")));
  return img;
}
