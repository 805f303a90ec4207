// Numbers, times, statuses and schedules in words.

/** 1.5 MB from bytes. */
export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** 3:07 from seconds (or milliseconds with `ms`). */
export function clock(seconds, ms = false) {
  if (seconds === null || seconds === undefined) return "";
  let s = Math.round(ms ? seconds / 1000 : seconds);
  const hrs = Math.floor(s / 3600);
  s -= hrs * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (x) => String(x).padStart(2, "0");
  return hrs ? `${hrs}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** "5 minutes ago" / "in 2 hours" from a Unix time in milliseconds. */
export function when(ms) {
  if (!ms) return "never";
  const d = (ms - Date.now()) / 1000;
  const a = Math.abs(d);
  const [n, unit] =
    a < 60 ? [Math.round(a), "second"] :
    a < 3600 ? [Math.round(a / 60), "minute"] :
    a < 86400 ? [Math.round(a / 3600), "hour"] : [Math.round(a / 86400), "day"];
  const s = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return d >= 0 ? `in ${s}` : `${s} ago`;
}

/** The full date and time, for a title attribute. */
export function stamp(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

const STATUS = {
  queued: "Queued",
  running: "Running",
  resolving: "Looking it up",
  downloading: "Downloading",
  processing: "Processing",
  tagging: "Tagging",
  waiting: "Waiting to retry",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
  skipped: "Skipped",
  needs_review: "Needs your review",
  held: "Held",
};

/** A status in words. */
export function status(s) {
  return STATUS[s] || s || "";
}

/** Whether a status is an end state. */
export function ended(s) {
  return ["done", "failed", "cancelled", "skipped", "needs_review"].includes(s);
}

/** A transfer rate. */
export function speed(bps) {
  return bps ? bytes(bps) + "/s" : "";
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/**
 * A cron expression in words, for the common shapes (5 or 6 fields); the expression itself
 * otherwise.
 */
export function cron(expr) {
  const f = (expr || "").trim().split(/\s+/);
  if (f.length === 6) f.shift(); // seconds
  if (f.length !== 5) return expr || "";
  const [min, hour, dom, mon, dow] = f;
  const num = (x) => /^\d+$/.test(x);
  const at = num(min) && num(hour) ? `at ${hour.padStart(2, "0")}:${min.padStart(2, "0")}` : null;
  const every = (x) => (x.startsWith("*/") && num(x.slice(2)) ? Number(x.slice(2)) : null);
  if (mon !== "*") return expr;
  if (every(min) && hour === "*" && dom === "*" && dow === "*") return `every ${every(min)} minutes`;
  if (num(min) && hour === "*" && dom === "*" && dow === "*") return `every hour at minute ${min}`;
  if (num(min) && every(hour) && dom === "*" && dow === "*") return `every ${every(hour)} hours at minute ${min}`;
  if (at && dom === "*" && dow === "*") return `every day ${at}`;
  if (at && dom === "*" && num(dow) && Number(dow) < 7) return `every ${DAYS[Number(dow)]} ${at}`;
  if (at && num(dom) && dow === "*") return `on day ${dom} of every month ${at}`;
  return expr;
}
