//! `musicd watch add|list|check`.

use super::*;

pub(super) async fn watch_inner(
    config: &Config,
    command: WatchCommand,
) -> Result<ExitCode, ClientError> {
    match command {
        WatchCommand::Add(a) => {
            let daemon = Daemon::new(config, a.connect)?;
            let mut body = match &a.provider {
                Some(p) => json!({ "provider": p, "kind": a.kind, "id": a.source }),
                None => json!({ "url": a.source }),
            };
            body["download_existing"] = json!(a.download_existing);
            for (k, v) in [
                ("schedule", &a.schedule),
                ("on_removed", &a.on_removed),
                ("format", &a.format),
                ("quality", &a.quality),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if !a.release_types.is_empty() {
                body["release_types"] = json!(a.release_types);
            }
            let w: Value = daemon
                .call(daemon.http.post(daemon.url(&["watches"])).json(&body))
                .await?;
            println!(
                "watching as {} ({} {}); first check: task {}",
                w["id"].as_str().unwrap_or("?"),
                w["provider"].as_str().unwrap_or("?"),
                w["kind"].as_str().unwrap_or("?"),
                w["check_task_id"].as_str().unwrap_or("already running"),
            );
            Ok(ExitCode::SUCCESS)
        }
        WatchCommand::List {
            json: as_json,
            connect,
        } => {
            let daemon = Daemon::new(config, connect)?;
            let data: Value = daemon
                .call(
                    daemon
                        .http
                        .get(daemon.url(&["watches"]))
                        .query(&[("limit", "500")]),
                )
                .await?;
            if as_json {
                println!("{}", pretty(&data));
                return Ok(ExitCode::SUCCESS);
            }
            let items = data["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no watches");
            }
            for w in items {
                let when = |k: &str| {
                    w[k].as_i64()
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or("-".to_string(), |t| {
                            t.format("%Y-%m-%d %H:%M:%SZ").to_string()
                        })
                };
                let result = match (&w["last_error"], &w["last_result"]) {
                    (Value::String(e), _) => format!("error: {e}"),
                    (_, r) if r.is_object() => {
                        format!("+{} -{}", r["added"], r["removed"])
                    }
                    _ => "not checked yet".into(),
                };
                println!(
                    "{}  {:<40}  last {}  next {}  {}{}",
                    w["id"].as_str().unwrap_or("?"),
                    w["title"]
                        .as_str()
                        .or(w["item_id"].as_str())
                        .unwrap_or("?")
                        .chars()
                        .take(40)
                        .collect::<String>(),
                    when("last_check_at"),
                    when("next_check_at"),
                    result,
                    if w["enabled"] == json!(false) {
                        "  (disabled)"
                    } else {
                        ""
                    },
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WatchCommand::Check {
            id,
            dry_run,
            connect,
        } => {
            let daemon = Daemon::new(config, connect)?;
            let Some(id) = id else {
                let r: Value = daemon
                    .call(daemon.http.post(daemon.url(&["watches", "check"])))
                    .await?;
                let n = |k: &str| r[k].as_array().map_or(0, Vec::len);
                println!(
                    "{} checks queued, {} already running",
                    n("queued"),
                    n("running")
                );
                return Ok(ExitCode::SUCCESS);
            };
            let req = daemon
                .http
                .post(daemon.url(&["watches", &id, "check"]))
                .query(&[("dry_run", dry_run.to_string())]);
            let r: Value = daemon.call(req).await?;
            if dry_run {
                for (sign, key) in [("+", "added"), ("-", "removed")] {
                    for i in r[key].as_array().into_iter().flatten() {
                        println!(
                            "{sign} {}",
                            i["title"].as_str().or(i["id"].as_str()).unwrap_or("?")
                        );
                    }
                }
                let n = |k: &str| r[k].as_array().map_or(0, Vec::len);
                println!("would add {}, remove {}", n("added"), n("removed"));
            } else {
                println!(
                    "check queued as task {}",
                    r["task_id"].as_str().unwrap_or("?")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
