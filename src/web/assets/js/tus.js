// A tus 1.0 client (core, creation): the upload's address is remembered in localStorage
// under the file's fingerprint, so after a dropped connection or a reload, choosing the same
// file again asks the server where it stands and sends only the rest.

import { csrfToken } from "./api.js";

const KEY = "musicd.uploads";
const CHUNK = 4 * 1024 * 1024;

function fingerprint(file) {
  return [file.webkitRelativePath || file.name, file.size, file.lastModified].join("|");
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(KEY)) || {};
  } catch (_) {
    return {};
  }
}

function remember(file, entry) {
  const all = remembered();
  if (entry) all[fingerprint(file)] = entry;
  else delete all[fingerprint(file)];
  localStorage.setItem(KEY, JSON.stringify(all));
}

/** Uploads not finished when the page last closed: name, size and bytes sent. */
export function unfinished() {
  return Object.values(remembered());
}

/** Forgets an unfinished upload (it stays on the server until it expires). */
export function forget(name) {
  const all = remembered();
  for (const [k, v] of Object.entries(all)) if (v.name === name) delete all[k];
  localStorage.setItem(KEY, JSON.stringify(all));
}

function b64(s) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s)));
}

function request(method, url, headers, body, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    x.setRequestHeader("Tus-Resumable", "1.0.0");
    x.setRequestHeader("X-CSRF-Token", csrfToken());
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    if (onProgress) x.upload.onprogress = (e) => onProgress(e.loaded);
    x.onload = () => resolve(x);
    x.onerror = () => reject(new Error("the connection to musicd dropped"));
    x.onabort = () => reject(Object.assign(new Error("stopped"), { name: "AbortError" }));
    if (signal) signal.addEventListener("abort", () => x.abort());
    x.send(body);
  });
}

function failure(x) {
  try {
    const e = JSON.parse(x.responseText).error;
    return new Error(e.message);
  } catch (_) {
    return new Error(`musicd answered ${x.status}`);
  }
}

/**
 * Uploads `file`, resuming a remembered upload of it. `onProgress(sent, total, resumedAt)`
 * reports bytes; resolves to the task id that processes the file.
 */
export async function upload(file, onProgress, signal) {
  let entry = remembered()[fingerprint(file)];
  let offset = 0;
  let resumedAt = null;
  if (entry) {
    const x = await request("HEAD", entry.url, {}, null, null, signal);
    if (x.status === 200) {
      offset = Number(x.getResponseHeader("Upload-Offset")) || 0;
      resumedAt = offset;
      const done = x.getResponseHeader("Musicd-Task-Id");
      if (done) {
        remember(file, null);
        return done;
      }
    } else {
      entry = null; // expired or gone: start again
    }
  }
  if (!entry) {
    const name = file.webkitRelativePath || file.name;
    const meta = `filename ${b64(name)}`;
    const x = await request("POST", "/api/v1/uploads/tus", { "Upload-Length": String(file.size), "Upload-Metadata": meta }, null, null, signal);
    if (x.status !== 201) throw failure(x);
    entry = { url: x.getResponseHeader("Location"), name, size: file.size, sent: 0 };
    remember(file, entry);
  }
  onProgress(offset, file.size, resumedAt);
  for (;;) {
    const end = Math.min(offset + CHUNK, file.size);
    const x = await request(
      "PATCH",
      entry.url,
      { "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(offset) },
      file.slice(offset, end),
      (n) => onProgress(offset + n, file.size, resumedAt),
      signal,
    );
    if (x.status === 409) {
      // Somewhere else moved it on (another tab): ask where it stands.
      const hx = await request("HEAD", entry.url, {}, null, null, signal);
      offset = Number(hx.getResponseHeader("Upload-Offset")) || 0;
      continue;
    }
    if (x.status !== 204) throw failure(x);
    offset = Number(x.getResponseHeader("Upload-Offset"));
    remember(file, { ...entry, sent: offset });
    onProgress(offset, file.size, resumedAt);
    const task = x.getResponseHeader("Musicd-Task-Id");
    if (offset >= file.size) {
      remember(file, null);
      return task;
    }
  }
}
