// The public API, as the page uses it: JSON in and out, the session cookie, and the CSRF
// token on every request that changes something.

const BASE = "/api/v1";
let csrf = "";

/** An answer that was not a success: the API's code and message, in words. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

/** Keeps the session's CSRF token for the requests that need it. */
export function setCsrf(token) {
  csrf = token || "";
}

/** The CSRF token, for requests the page builds itself (uploads). */
export function csrfToken() {
  return csrf;
}

/** Calls the API; resolves to the envelope's `data`, rejects with an ApiError. */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: payload,
      credentials: "same-origin",
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "musicd cannot be reached: " + e.message);
  }
  let json = null;
  const text = await res.text();
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (json && json.success) return json.data;
  const err = (json && json.error) || {};
  if (res.status === 401 && opts.on401 !== false) {
    window.dispatchEvent(new CustomEvent("musicd:signed-out"));
  }
  throw new ApiError(
    res.status,
    err.code || "http_" + res.status,
    err.message || `${res.status} ${res.statusText}`,
    err.details,
  );
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body === undefined ? {} : body, opts);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);
