//! `download`: the parent task of a request. Resolves the URL (or provider/kind/id) through a
//! provider, then creates one `track` child per track and waits for them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::track::{self, TrackOptions};
use super::{JobCtx, JobError, Outcome};
use crate::db::tasks::{self, NewTask};
use crate::failure::{Classify, code};
use crate::providers::{self, Fetcher, Resolved, TrackInfo, looks_like_feed};
use crate::queue::Pool;

/// The ledger kind.
pub const KIND: &str = "download";

/// What to download, and how to process it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadOptions {
    /// A URL: a podcast feed or a direct audio file (detected by content).
    pub url: Option<String>,
    /// Or a provider name (`http`, `podcast`) …
    pub provider: Option<String>,
    /// … with a kind (`track`, `feed`) …
    pub kind: Option<String>,
    /// … and an id (for `http` and `podcast`, the URL).
    pub id: Option<String>,
    /// Output format (default `media.format`).
    pub format: Option<String>,
    /// Quality preset (default `media.quality`).
    pub quality: Option<String>,
    /// Path template (default `media.path_template`).
    pub path_template: Option<String>,
    /// For an artist: which releases (`album`, `single`, `compilation`, `appears_on`);
    /// absent keeps all.
    pub release_types: Option<Vec<String>>,
    /// Only these of a collection's tracks, by the ids `GET /resolve` lists; absent takes
    /// all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<String>>,
}

#[async_trait::async_trait]
impl super::Job for DownloadOptions {
    const KIND: &'static str = KIND;
    const POOL: crate::queue::Pool = crate::queue::Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<super::Outcome, JobError> {
        run(ctx, self).await
    }
}

/// Resolves and fans out.
async fn run(ctx: &JobCtx, opts: DownloadOptions) -> Result<Outcome, JobError> {
    let shared = &ctx.shared;
    let staging = track::staging_dir(&shared.config, &ctx.task.id, true)?;
    let mut fetcher = Fetcher::new(shared.env.clone(), staging.clone(), ctx.stop.clone());
    fetcher.release_types = opts.release_types.clone().unwrap_or_default();
    ctx.progress("resolving", 0.0).await?;
    let mut prefetched = None;
    // The provider a URL turned out to be for, when the request named none.
    let mut via: Option<&str> = None;
    let resolved = match (&opts.provider, &opts.url) {
        (Some(p), _) => {
            let provider = shared.providers.get(p).ok_or_else(|| {
                JobError::permanent(code::VALIDATION_ERROR, format!("unknown provider `{p}`"))
            })?;
            let kind = opts.kind.as_deref().unwrap_or_default();
            let id = opts.id.as_deref().unwrap_or_default();
            provider.resolve(kind, id, &fetcher).await?
        }
        (None, Some(url)) => {
            // Fetch once and look at the content: a feed is expanded, anything else is the
            // track itself (the file is kept, not downloaded twice).
            let f = ctx
                .while_reporting(
                    "downloading",
                    musicd_media::fetch::fetch(
                        url,
                        &staging,
                        &fetcher.options,
                        &|p| ctx.report_bytes_sync(p.bytes_done, p.total),
                        &ctx.stop,
                    ),
                )
                .await
                .map_err(super::pipeline_error)?;
            let head = read_head(f.path()).await;
            if looks_like_feed(&head, f.content_type.as_deref()) {
                // Streamed to disk above; only a feed within the cap is read into memory.
                let max = shared.config.media.max_feed_size.as_u64();
                if f.bytes > max {
                    return Err(providers::podcast::too_large(max));
                }
                let body = tokio::fs::read(f.path()).await.transient(code::IO_ERROR)?;
                providers::podcast::parse(&body, url)?
            } else if looks_like_html(&head, f.content_type.as_deref()) {
                // A web page: yt-dlp may know the site (its audio, or a playlist of it).
                drop(f);
                let ytdlp = shared.providers.get("ytdlp").ok_or_else(|| {
                    JobError::permanent(code::PROVIDER_UNAVAILABLE, "the ytdlp provider is missing")
                })?;
                via = Some("ytdlp");
                ytdlp.resolve("url", url, &fetcher).await?
            } else {
                prefetched = Some(f.keep());
                Resolved::Track {
                    track: TrackInfo {
                        id: url.clone(),
                        url: url.clone(),
                        title: providers::url_stem(url),
                        ..TrackInfo::default()
                    },
                }
            }
        }
        (None, None) => {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                "`url` or `provider` is required",
            ));
        }
    };
    let resolved_at = std::time::Instant::now();
    let (provider, tracks, playlist_title) = match resolved {
        Resolved::Track { track } => {
            if let Some(title) = Some(track.label()).filter(|_| track.title.is_some()) {
                tasks::set_title(&shared.db, &ctx.task.id, &title).await?;
            }
            (
                opts.provider
                    .clone()
                    .or(via.map(str::to_string))
                    .unwrap_or_else(|| "http".into()),
                vec![track],
                None,
            )
        }
        Resolved::Collection {
            mut tracks,
            collection,
            title,
        } => {
            if let Some(only) = &opts.tracks {
                tracks.retain(|t| only.contains(&t.id));
                if tracks.is_empty() {
                    return Err(JobError::permanent(
                        code::VALIDATION_ERROR,
                        "none of the chosen tracks is in this collection any more",
                    ));
                }
            }
            if let Some(t) = title.as_deref().filter(|t| !t.trim().is_empty()) {
                tasks::set_title(&shared.db, &ctx.task.id, t).await?;
            }
            (
                opts.provider
                    .clone()
                    .or(via.map(str::to_string))
                    .unwrap_or_else(|| "podcast".into()),
                tracks,
                // Playlists and feeds get an .m3u8, written as their tracks end.
                matches!(collection.as_str(), "playlist" | "feed")
                    .then(|| title.unwrap_or_default()),
            )
        }
    };
    if let Some(title) = playlist_title.filter(|t| !t.trim().is_empty()) {
        let path = shared
            .config
            .library_dir
            .join(crate::playlist::relative_path(&title));
        super::record_output(ctx, &path.display().to_string()).await?;
    }
    let output = Output {
        format: opts.format.clone(),
        quality: opts.quality.clone(),
        path_template: opts.path_template.clone(),
    };
    let created = fan_out(ctx, &provider, tracks, &output, prefetched).await?;
    tracing::info!(
        task_id = ctx.task.id,
        children = created.len(),
        elapsed_ms = resolved_at.elapsed().as_millis() as u64,
        "children created"
    );
    let _ = tokio::fs::remove_dir_all(&staging).await;
    Ok(Outcome::AwaitChildren)
}

/// How a request's tracks are processed.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Output format, or the media default.
    pub format: Option<String>,
    /// Quality preset, or the media default.
    pub quality: Option<String>,
    /// Path template, or the media default.
    pub path_template: Option<String>,
}

/// Creates one `track` child of the running task per track, in order, and queues the first
/// `enqueue_window` of them (the rest are held and released as earlier ones end). A file
/// already downloaded (`prefetched`) goes to the first child.
pub async fn fan_out(
    ctx: &JobCtx,
    provider: &str,
    tracks: Vec<TrackInfo>,
    output: &Output,
    prefetched: Option<std::path::PathBuf>,
) -> Result<Vec<tasks::Task>, JobError> {
    let shared = &ctx.shared;
    let children: Vec<NewTask> = tracks
        .into_iter()
        .map(|t| {
            // A catalog track has no URL: its link is its catalog id.
            let source = Some(if t.url.is_empty() {
                format!("{provider}:track:{}", t.id)
            } else {
                t.url.clone()
            });
            let title = Some(t.label());
            let job = TrackOptions::new(t, provider, output);
            let mut new = super::new_task(&job);
            if prefetched.is_some() {
                new.pool = Pool::Cpu.as_str().into();
            }
            NewTask {
                source,
                title,
                max_attempts: ctx.task.max_attempts,
                ..new
            }
        })
        .collect();
    let window = shared.config.workers.enqueue_window;
    let created = tasks::insert_children(&shared.db, &ctx.task, &children, window).await?;
    if let (Some(file), Some(child)) = (prefetched, created.first()) {
        // Hand the downloaded file to the child's own staging directory.
        let dir = track::staging_dir(&shared.config, &child.id, true)?;
        let dest = dir.join("source");
        tokio::fs::rename(&file, &dest)
            .await
            .transient_while(code::IO_ERROR, "move download")?;
        let mut o: TrackOptions =
            serde_json::from_str(&child.options).permanent(code::INTERNAL_ERROR)?;
        o.fetched = Some(dest.display().to_string());
        tasks::set_options(
            &shared.db,
            &child.id,
            &serde_json::to_string(&o).unwrap_or_default(),
        )
        .await?;
    }
    // Every child is announced; only the first `window` are queued now, the rest as earlier
    // ones end (see `jobs::settle`).
    for child in created.iter().take(window) {
        super::announce(&shared.queue, &shared.events, child).await;
    }
    if created.len() > window {
        let bodies = created[window..]
            .iter()
            .map(|t| crate::wire::TaskEventKind::Created.with(super::task_event(t)))
            .collect();
        let owner = ctx.task.owner_id.as_deref();
        shared.events.publish_many(owner, bodies).await;
    }
    Ok(created)
}

/// Rewrites the `.m3u8` of a finished playlist or feed download (its `output_path`) from its
/// children's files, in source order.
pub async fn write_playlist(shared: &super::JobEnv, parent: &tasks::Task) -> anyhow::Result<()> {
    let Some(path) = parent
        .output_path
        .as_deref()
        .filter(|p| p.ends_with(".m3u8"))
    else {
        return Ok(());
    };
    let library = &shared.config.library_dir;
    let rel = std::path::Path::new(path)
        .strip_prefix(library)
        .map(|p| p.to_path_buf())?;
    let mut entries = Vec::new();
    let mut offset = 0;
    loop {
        let page = tasks::children(&shared.db, &parent.id, 1000, offset).await?;
        offset += page.len() as i64;
        for c in &page {
            let (Some(out), true) = (
                &c.output_path,
                matches!(c.status.as_str(), "done" | "skipped"),
            ) else {
                continue;
            };
            if let Ok(o) = serde_json::from_str::<TrackOptions>(&c.options) {
                entries.push((o.track, std::path::PathBuf::from(out)));
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    let library = library.clone();
    tokio::task::spawn_blocking(move || crate::playlist::write(&library, &rel, &entries)).await??;
    Ok(())
}

/// Whether a document is a web page (by its type, or by how it starts).
fn looks_like_html(head: &[u8], content_type: Option<&str>) -> bool {
    if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("text/html")) {
        return true;
    }
    let text = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    text.starts_with("<!doctype html") || text.starts_with("<html")
}

async fn read_head(path: &std::path::Path) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 1024];
    match tokio::fs::File::open(path).await {
        Ok(mut f) => {
            let n = f.read(&mut buf).await.unwrap_or(0);
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}
