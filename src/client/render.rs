//! Text for a terminal: task tables, ages, sizes, titles.

use super::*;

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A compact table: id, kind, status, progress, and the output (when done) or the source.
pub(super) fn table(tasks: &[Task]) -> String {
    let rows: Vec<[String; 5]> = tasks
        .iter()
        .map(|t| {
            let mut what = match (&t.output_path, &t.source) {
                (Some(p), _) if t.status == "done" => p.clone(),
                (_, Some(s)) => s.clone(),
                (Some(p), None) => p.clone(),
                (None, None) => String::new(),
            };
            if let Some(e) = t.error.as_deref().filter(|_| t.status != "done") {
                what = format!("{what}  [{e}]").trim_start().to_string();
            }
            [
                t.id.clone(),
                t.kind.clone(),
                t.status.clone(),
                format!("{:.0}%", t.progress * 100.0),
                what,
            ]
        })
        .collect();
    let head = ["ID", "KIND", "STATUS", "PROGRESS", "SOURCE / OUTPUT"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    out
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(super) fn ago(now: i64, at: i64) -> String {
    if at <= 0 {
        return "-".into();
    }
    let s = ((now - at) / 1000).max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

pub(super) fn bytes_of(done: i64, total: Option<i64>) -> String {
    let b = |n: i64| bytesize::ByteSize(n.max(0) as u64).to_string();
    match total {
        Some(t) if t > 0 => format!("{} / {}", b(done), b(t)),
        _ => b(done),
    }
}

pub(super) fn with_code(error: &str, code: Option<&str>) -> String {
    match code {
        Some(c) if !c.is_empty() => format!("{error} [{c}]"),
        _ => error.to_string(),
    }
}

/// A short name for a task: the last path segment of its source, decoded.
pub(super) fn title_of(source: Option<&str>, fallback: &str) -> String {
    let Some(src) = source.map(str::trim).filter(|s| !s.is_empty()) else {
        return fallback.to_string();
    };
    let last = match url::Url::parse(src) {
        Ok(u) => u
            .path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(percent_decode))
            .or_else(|| u.host_str().map(str::to_string)),
        Err(_) => src.rsplit('/').find(|p| !p.is_empty()).map(str::to_string),
    };
    last.unwrap_or_else(|| src.to_string())
}

pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
