//! `musicd add`, `musicd tasks` and `musicd task`.

use super::*;

pub(super) async fn add_inner(config: &Config, args: AddArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    if args.dry_run {
        let req = daemon
            .http
            .get(daemon.url(&["resolve"]))
            .query(&[("url", &args.source)]);
        let info: Value = daemon.call(req).await?;
        print_link(&info);
        return Ok(ExitCode::SUCCESS);
    }
    let mut body = json!({ "url": args.source });
    for (k, v) in [
        ("format", &args.format),
        ("quality", &args.quality),
        ("path_template", &args.path_template),
    ] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    #[derive(Deserialize)]
    struct Created {
        task_id: String,
    }
    let req = daemon.http.post(daemon.url(&["downloads"])).json(&body);
    let task_id = match daemon.call::<Created>(req).await {
        Ok(c) => {
            println!("requested as task {}", c.task_id);
            c.task_id
        }
        Err(ClientError::Api { code, details, .. })
            if code == "duplicate_request"
                && details
                    .first()
                    .and_then(|d| d["task_id"].as_str())
                    .is_some() =>
        {
            let id = details[0]["task_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            println!("already requested as task {id}");
            id
        }
        Err(e) => return Err(e),
    };
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    Follow::new(task_id).run(&daemon).await
}

/// What `GET /resolve` says of a link, for people.
fn print_link(info: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    println!(
        "{} {} {}: {}",
        s(&info["provider"]),
        s(&info["kind"]),
        s(&info["id"]),
        info["title"].as_str().unwrap_or("(untitled)")
    );
    for (n, t) in info["tracks"].as_array().into_iter().flatten().enumerate() {
        let artists: Vec<String> = t["artists"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let secs = t["duration_ms"].as_u64().unwrap_or(0) / 1000;
        let mark = if t["in_library"] == json!(true) {
            "  (in the library)".to_string()
        } else if let Some(why) = t["unavailable"].as_str() {
            format!("  (unavailable: {why})")
        } else {
            String::new()
        };
        println!(
            "{:>4}. {} – {} [{}:{:02}]{mark}",
            n + 1,
            artists.join(", "),
            t["title"].as_str().unwrap_or("?"),
            secs / 60,
            secs % 60
        );
    }
    for r in info["releases"].as_array().into_iter().flatten() {
        println!(
            "  {} {} ({}, {})",
            s(&r["date"]),
            s(&r["title"]),
            s(&r["release_type"]),
            s(&r["id"])
        );
    }
}

pub(super) async fn tasks_inner(config: &Config, args: TasksArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = args.status {
        query.push(("status", s));
    }
    if args.active {
        query.push(("active_only", "true".into()));
    }
    let data: Value = daemon
        .call(daemon.http.get(daemon.url(&["tasks"])).query(&query))
        .await?;
    if args.json {
        println!("{}", pretty(&data));
        return Ok(ExitCode::SUCCESS);
    }
    let page: Page<Task> = serde_json::from_value(data)
        .map_err(|e| ClientError::Connect(format!("unexpected task list: {e}")))?;
    if page.items.is_empty() {
        println!("no tasks");
    } else {
        print!("{}", table(&page.items));
    }
    if page.next_cursor.is_some() {
        println!("(more tasks: raise --limit, at most 200)");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn task_inner(config: &Config, args: TaskArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    if args.follow {
        return Follow::new(args.id).run(&daemon).await;
    }
    let data: Value = daemon
        .call(daemon.http.get(daemon.url(&["tasks", &args.id])))
        .await?;
    if args.json {
        println!("{}", pretty(&data));
        return Ok(ExitCode::SUCCESS);
    }
    let t: Task = serde_json::from_value(data)
        .map_err(|e| ClientError::Connect(format!("unexpected task: {e}")))?;
    let now = now_ms();
    let mut rows = vec![
        ("id", t.id.clone()),
        ("kind", t.kind.clone()),
        ("status", t.status.clone()),
    ];
    if let Some(s) = &t.stage {
        rows.push(("stage", s.clone()));
    }
    let mut progress = format!("{:.0}%", t.progress * 100.0);
    if t.bytes_done > 0 || t.bytes_total.is_some() {
        progress.push_str(&format!("  {}", bytes_of(t.bytes_done, t.bytes_total)));
    }
    rows.push(("progress", progress));
    rows.push(("attempts", t.attempts.to_string()));
    if let Some(s) = &t.source {
        rows.push(("source", s.clone()));
    }
    if let Some(p) = &t.output_path {
        rows.push(("output", p.clone()));
    }
    if let Some(e) = &t.error {
        rows.push(("error", with_code(e, t.error_code.as_deref())));
    }
    rows.push(("created", ago(now, t.created_at)));
    rows.push(("updated", ago(now, t.updated_at)));
    for (k, v) in rows {
        println!("{k:<9} {v}");
    }
    if t.kind == "download" {
        match daemon.children(&t.id).await {
            Ok(children) if !children.is_empty() => {
                println!();
                print!("{}", table(&children));
            }
            Ok(_) => {}
            Err(e @ ClientError::Connect(_)) => return Err(e),
            Err(_) => eprintln!("musicd: this daemon does not list a task's children"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
