//! Following a request live: progress bars per track from the event stream, reconnecting
//! with `Last-Event-ID`, polling when the stream is gone, and a summary at the end.

use super::*;

/// Bars on a terminal, plain lines otherwise.
pub(super) enum Ui {
    Bars(MultiProgress),
    Plain,
}

impl Ui {
    pub(super) fn new() -> Self {
        if std::io::stdout().is_terminal() {
            Ui::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
        } else {
            Ui::Plain
        }
    }

    pub(super) fn line(&self, s: &str) {
        match self {
            Ui::Bars(m) => m.suspend(|| println!("{s}")),
            Ui::Plain => println!("{s}"),
        }
    }

    pub(super) fn warn(&self, s: &str) {
        match self {
            Ui::Bars(m) => m.suspend(|| eprintln!("musicd: {s}")),
            Ui::Plain => eprintln!("musicd: {s}"),
        }
    }

    pub(super) fn bar(&self, style: &ProgressStyle) -> Option<ProgressBar> {
        match self {
            Ui::Bars(m) => Some(m.add(ProgressBar::new(100).with_style(style.clone()))),
            Ui::Plain => None,
        }
    }

    pub(super) fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        if let Ui::Bars(m) = self {
            m.remove(bar);
        }
    }
}

/// What is known of one task while following.
pub(super) struct Item {
    pub(super) title: String,
    pub(super) status: String,
    pub(super) stage: Option<String>,
    pub(super) attempts: i64,
    pub(super) error: Option<String>,
    pub(super) error_code: Option<String>,
    pub(super) output_path: Option<String>,
    pub(super) bar: Option<ProgressBar>,
}

impl Item {
    pub(super) fn new(title: String) -> Self {
        Self {
            title,
            status: "queued".into(),
            stage: None,
            attempts: 0,
            error: None,
            error_code: None,
            output_path: None,
            bar: None,
        }
    }
}

/// Following a task: its children's bars, state-change lines and the final summary.
pub(super) struct Follow {
    pub(super) id: String,
    pub(super) parent: Item,
    pub(super) children: HashMap<String, Item>,
    /// Children in the order they were first seen.
    pub(super) order: Vec<String>,
    pub(super) ui: Ui,
    pub(super) overall: Option<ProgressBar>,
    pub(super) bar_style: ProgressStyle,
    /// Set once the daemon has refused to list children, so the warning is shown once.
    pub(super) no_children_route: bool,
}

pub(super) enum Outcome {
    /// The task reached a final status.
    Ended,
    /// Ctrl-C.
    Interrupted,
}

impl Follow {
    pub(super) fn new(id: String) -> Self {
        let ui = Ui::new();
        let overall = ui.bar(
            &ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if let Some(b) = &overall {
            b.set_prefix(id.clone());
            b.set_message("connecting");
            b.enable_steady_tick(Duration::from_millis(150));
        }
        Self {
            parent: Item::new(id.clone()),
            id,
            children: HashMap::new(),
            order: Vec::new(),
            ui,
            overall,
            bar_style: ProgressStyle::with_template(
                "{prefix:>10.dim} [{bar:24.cyan/blue}] {pos:>3}% {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
            no_children_route: false,
        }
    }

    /// Follows until the task ends or Ctrl-C, then prints the summary.
    pub(super) async fn run(mut self, daemon: &Daemon) -> Result<ExitCode, ClientError> {
        let outcome = self.watch(daemon).await;
        self.clear_bars();
        match outcome {
            Ok(Outcome::Ended) => Ok(self.summary(daemon).await),
            Ok(Outcome::Interrupted) => {
                eprintln!(
                    "stopped following; task {id} continues on the daemon (musicd task {id} --follow)",
                    id = self.id
                );
                Ok(ExitCode::from(130))
            }
            Err(e) => {
                eprintln!(
                    "musicd: stopped following; task {} continues on the daemon",
                    self.id
                );
                Err(e)
            }
        }
    }

    pub(super) async fn watch(&mut self, daemon: &Daemon) -> Result<Outcome, ClientError> {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut last_id: Option<String> = None;
        let mut down_since: Option<Instant> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            if let Some(since) = down_since {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if since.elapsed() > GIVE_UP_AFTER {
                    return Err(ClientError::Connect(format!(
                        "lost the daemon at {} for over {}s",
                        daemon.root,
                        GIVE_UP_AFTER.as_secs()
                    )));
                }
            }
            let opened = tokio::select! {
                r = daemon.open_events(&self.id, last_id.as_deref()) => r,
                _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
            };
            let resp = match opened {
                Ok(r) => r,
                Err(e @ ClientError::Connect(_)) => {
                    if down_since.is_none() {
                        self.ui.warn(&format!("{}; retrying", message_of(&e)));
                        down_since = Some(Instant::now());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Read the state only once the stream is open: whatever ends after this point
            // arrives as an event, whatever ended before is in the answer.
            match self.sync(daemon).await {
                Ok(()) => {}
                Err(e @ ClientError::Connect(_)) => {
                    self.ui.warn(&format!("{}; retrying", message_of(&e)));
                    down_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Err(e) => return Err(e),
            }
            if down_since.take().is_some() {
                self.ui.warn("connected again");
            }
            if is_final(&self.parent.status) {
                return Ok(Outcome::Ended);
            }
            let mut events = std::pin::pin!(idle_guard(resp.bytes_stream()).eventsource());
            loop {
                let next = tokio::select! {
                    n = events.next() => n,
                    _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
                };
                let ev = match next {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => {
                        self.ui
                            .warn(&format!("event stream interrupted ({e}); reconnecting"));
                        break;
                    }
                    None => {
                        self.ui.warn("event stream closed; reconnecting");
                        break;
                    }
                };
                if !ev.id.is_empty() {
                    last_id = Some(ev.id.clone());
                }
                if ev.event == "stream.gap" {
                    // Some events are gone: the task's state is the truth.
                    match self.sync(daemon).await {
                        Ok(()) => {}
                        Err(ClientError::Connect(_)) => break,
                        Err(e) => return Err(e),
                    }
                } else if let Some(data) =
                    EventBody::parse(&ev.event, &ev.data).and_then(|e| e.task().cloned())
                {
                    self.on_event(daemon, &ev.event, data).await;
                }
                if is_final(&self.parent.status) {
                    return Ok(Outcome::Ended);
                }
            }
            // A dropped stream is retried at once; a daemon that is down backs off above.
            down_since.get_or_insert_with(Instant::now);
            backoff = Duration::from_millis(200);
        }
    }

    /// Refetches the task and its children.
    pub(super) async fn sync(&mut self, daemon: &Daemon) -> Result<(), ClientError> {
        let parent = daemon.get_task(&self.id).await?;
        if !self.no_children_route {
            match daemon.children(&self.id).await {
                Ok(children) => {
                    for c in &children {
                        self.apply(&c.id, "", EventData::from(c));
                    }
                }
                Err(e @ ClientError::Connect(_)) => return Err(e),
                Err(e) => {
                    self.no_children_route = true;
                    self.ui.warn(&format!(
                        "cannot list the task's tracks ({}); following events only",
                        message_of(&e)
                    ));
                }
            }
        }
        if self.parent.title == self.id {
            self.parent.title = parent
                .title
                .clone()
                .unwrap_or_else(|| title_of(parent.source.as_deref(), &self.id));
        }
        self.apply(&self.id.clone(), "", EventData::from(&parent));
        Ok(())
    }

    pub(super) async fn on_event(&mut self, daemon: &Daemon, kind: &str, data: EventData) {
        let id = data.task_id.clone();
        if id != self.id && !self.children.contains_key(&id) {
            // A track not seen before: its source names it.
            // A track not seen before: its title, else its source, names it.
            let title = match (data.title.clone(), data.source.clone()) {
                (Some(t), _) => t,
                (None, Some(s)) => title_of(Some(&s), &id),
                (None, None) => match daemon.get_task(&id).await {
                    Ok(t) => t
                        .title
                        .unwrap_or_else(|| title_of(t.source.as_deref(), &id)),
                    Err(_) => id.clone(),
                },
            };
            self.children.insert(id.clone(), Item::new(title));
            self.order.push(id.clone());
        }
        self.apply(&id, kind, data);
    }

    /// Applies an event (`kind` is its type) or a snapshot (`kind` is empty) to one task.
    pub(super) fn apply(&mut self, id: &str, kind: &str, d: EventData) {
        let is_parent = id == self.id;
        if !is_parent && !self.children.contains_key(id) {
            let title = d
                .title
                .clone()
                .unwrap_or_else(|| title_of(d.source.as_deref(), id));
            self.children.insert(id.to_string(), Item::new(title));
            self.order.push(id.to_string());
        }
        let item = if is_parent {
            &mut self.parent
        } else {
            self.children.get_mut(id).expect("inserted above")
        };
        let prev = item.status.clone();
        let status = if d.status.is_empty() {
            prev.clone()
        } else {
            d.status.clone()
        };
        // A final status stays (an older event or snapshot can arrive after a newer one) and
        // is reported once; a later snapshot may only fill in what the event left out.
        if is_final(&prev) {
            if status == prev {
                if item.error.is_none() {
                    item.error = d.error;
                    item.error_code = d.error_code;
                }
                if item.output_path.is_none() {
                    item.output_path = d.output_path;
                }
            }
            return;
        }
        item.status = status.clone();
        if d.stage.is_some() {
            item.stage = d.stage.clone();
        }
        item.attempts = d.attempts;
        if d.error.is_some() {
            item.error = d.error.clone();
            item.error_code = d.error_code.clone();
        }
        if d.output_path.is_some() {
            item.output_path = d.output_path.clone();
        }
        let mut lines = Vec::new();
        let title = item.title.clone();
        let reason = || {
            with_code(
                item.error.as_deref().unwrap_or(""),
                item.error_code.as_deref(),
            )
        };
        if status != prev || kind == "task.retrying" {
            match status.as_str() {
                "done" => lines.push(match &item.output_path {
                    Some(p) => format!("done      {title} -> {p}"),
                    None => format!("done      {title}"),
                }),
                "failed" => lines.push(format!("failed    {title}: {}", reason())),
                "cancelled" => lines.push(format!("cancelled {title}")),
                "needs_review" => lines.push(format!(
                    "review    {title}: {} (pick one: GET /api/v1/tasks/{id}/candidates)",
                    reason()
                )),
                "skipped" => lines.push(match (&item.error, &item.output_path) {
                    (Some(_), _) => format!("skipped   {title}: {}", reason()),
                    (None, Some(p)) => format!("skipped   {title}: already at {p}"),
                    (None, None) => format!("skipped   {title}"),
                }),
                _ if kind == "task.retrying" => lines.push(format!(
                    "retrying  {title} (attempt {}): {}",
                    item.attempts + 1,
                    reason()
                )),
                "running" | "processing" if matches!(self.ui, Ui::Plain) && !is_parent => {
                    lines.push(format!("started   {title}"));
                }
                _ => {}
            }
        }
        // A parent that ends with `done` tells how many children failed in `error`: the
        // summary says that, so its own line would repeat it.
        if is_parent && status == "done" {
            lines.clear();
        }
        if is_final(&status) || status == "queued" {
            if let Some(bar) = item.bar.take() {
                self.ui.remove(&bar);
            }
        } else if !is_parent {
            if item.bar.is_none() {
                item.bar = self.ui.bar(&self.bar_style);
            }
            if let Some(bar) = &item.bar {
                bar.set_prefix(item.stage.clone().unwrap_or_else(|| status.clone()));
                bar.set_position(d.percent.clamp(0.0, 100.0).round() as u64);
                let mut msg = title.clone();
                if d.bytes_done > 0 {
                    msg.push_str(&format!("  {}", bytes_of(d.bytes_done, d.bytes_total)));
                }
                if let Some(speed) = d.speed_bps.filter(|&s| s > 0) {
                    msg.push_str(&format!("  {}/s", bytesize::ByteSize(speed)));
                }
                if let Some(eta) = d.eta_seconds.filter(|&s| s > 0) {
                    msg.push_str(&format!("  eta {eta}s"));
                }
                bar.set_message(msg);
            }
        }
        if is_parent && status != prev && matches!(self.ui, Ui::Plain) && !is_final(&status) {
            let stage = item
                .stage
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            lines.push(format!("task      {title}: {status}{stage}"));
        }
        for l in lines {
            self.ui.line(&l);
        }
        self.update_overall();
    }

    pub(super) fn update_overall(&self) {
        let Some(bar) = &self.overall else {
            return;
        };
        let ended = self
            .children
            .values()
            .filter(|c| is_final(&c.status))
            .count();
        let stage = self
            .parent
            .stage
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let mut msg = format!("{}{stage}  {}", self.parent.status, self.parent.title);
        if !self.children.is_empty() {
            msg = format!("{ended}/{} tracks  {msg}", self.children.len());
        }
        bar.set_message(msg);
    }

    pub(super) fn clear_bars(&mut self) {
        if let Some(b) = self.overall.take() {
            self.ui.remove(&b);
        }
        let bars: Vec<_> = self
            .children
            .values_mut()
            .filter_map(|c| c.bar.take())
            .collect();
        for b in bars {
            self.ui.remove(&b);
        }
    }

    /// Prints the counts and failures from the daemon's final state; the exit status is 0
    /// only if everything ended done or skipped.
    pub(super) async fn summary(mut self, daemon: &Daemon) -> ExitCode {
        // The ledger is the truth; lines for anything the stream did not show print here.
        self.ui = Ui::Plain;
        if let Err(e) = self.sync(daemon).await {
            eprintln!("musicd: cannot read the final state ({})", message_of(&e));
        }
        let items: Vec<&Item> = if self.children.is_empty() {
            vec![&self.parent]
        } else {
            self.order
                .iter()
                .filter_map(|id| self.children.get(id))
                .collect()
        };
        let count = |s: &str| items.iter().filter(|i| i.status == s).count();
        let (done, failed, skipped, cancelled, review) = (
            count("done"),
            count("failed"),
            count("skipped"),
            count("cancelled"),
            count("needs_review"),
        );
        let unfinished = items.len() - done - failed - skipped - cancelled - review;
        let mut line = format!("{done} done, {failed} failed, {skipped} skipped");
        if review > 0 {
            line.push_str(&format!(", {review} need review"));
        }
        if cancelled > 0 {
            line.push_str(&format!(", {cancelled} cancelled"));
        }
        if unfinished > 0 {
            line.push_str(&format!(", {unfinished} unfinished"));
        }
        println!("{line}");
        for i in items.iter().filter(|i| i.status == "failed") {
            println!(
                "  failed: {}: {}",
                i.title,
                with_code(
                    i.error.as_deref().unwrap_or("no reason given"),
                    i.error_code.as_deref()
                )
            );
        }
        let p = &self.parent;
        if !self.children.is_empty() && matches!(p.status.as_str(), "failed" | "cancelled") {
            println!(
                "task {} {}{}",
                self.id,
                p.status,
                p.error
                    .as_deref()
                    .map(|e| format!(": {}", with_code(e, p.error_code.as_deref())))
                    .unwrap_or_default()
            );
        }
        let ok = matches!(p.status.as_str(), "done" | "skipped")
            && failed == 0
            && cancelled == 0
            && unfinished == 0;
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

pub(super) fn message_of(e: &ClientError) -> String {
    match e {
        ClientError::Usage(m) | ClientError::Connect(m) => m.clone(),
        ClientError::Api { code, message, .. } => format!("{code}: {message}"),
    }
}

/// Why the byte stream under the events ended.
#[derive(Debug)]
pub(super) enum StreamFail {
    Http(reqwest::Error),
    Idle,
}

impl std::fmt::Display for StreamFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamFail::Http(e) => write!(f, "{e}"),
            StreamFail::Idle => write!(f, "nothing received for {}s", STREAM_IDLE.as_secs()),
        }
    }
}

/// Ends the byte stream with an error when it stays silent longer than [`STREAM_IDLE`]
/// (keep-alive comments count as traffic).
pub(super) fn idle_guard<B>(
    bytes: impl Stream<Item = reqwest::Result<B>>,
) -> impl Stream<Item = Result<B, StreamFail>> {
    futures::stream::unfold(Some(Box::pin(bytes)), |state| async move {
        let mut s = state?;
        match tokio::time::timeout(STREAM_IDLE, s.next()).await {
            Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
            Ok(Some(Err(e))) => Some((Err(StreamFail::Http(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(StreamFail::Idle), None)),
        }
    })
}
