//! `track`: one track of a request, in two stages. `fetch` (io pool) downloads the audio and
//! the cover into the task's staging directory; `process` (cpu pool) runs the media pipeline
//! into the library. Each stage starts by clearing what a crashed earlier run left behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::{JobCtx, JobError, Outcome};
use crate::config::Config;
use crate::failure::{Classify, code};
use crate::providers::{AudioFetch, Candidate, Fetcher, TrackInfo};
use crate::queue::Pool;

/// The ledger kind.
pub const KIND: &str = "track";

/// Largest cover image fetched.
const MAX_COVER_BYTES: u64 = 8 * 1024 * 1024;

/// A track task's options.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackOptions {
    /// What the provider knows.
    pub track: TrackInfo,
    /// Which provider (part of the identity).
    pub provider: String,
    /// Output format override.
    pub format: Option<String>,
    /// Quality override.
    pub quality: Option<String>,
    /// Path template override.
    pub path_template: Option<String>,
    /// The downloaded audio, once fetched.
    pub fetched: Option<String>,
    /// The downloaded cover, once fetched.
    pub cover: Option<String>,
    /// Title when neither the request nor the file has one (an upload's sanitized file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_title: Option<String>,
    /// A catalog track's audio, once matched: what was downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<Candidate>,
    /// A person's choice of audio (`POST /tasks/{id}/match`): downloaded without a search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<Candidate>,
    /// The ranked candidates of the last search, for review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// The searches the last match made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    /// Lyrics found for it (`media.lyrics`), once fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lyrics: Option<crate::providers::lrclib::Lyrics>,
}

impl TrackOptions {
    /// A track of `provider` to fetch and process with `output`'s settings.
    pub fn new(track: TrackInfo, provider: &str, output: &super::download::Output) -> Self {
        Self {
            track,
            provider: provider.to_string(),
            format: output.format.clone(),
            quality: output.quality.clone(),
            path_template: output.path_template.clone(),
            fetched: None,
            cover: None,
            fallback_title: None,
            matched: None,
            chosen: None,
            candidates: Vec::new(),
            queries: Vec::new(),
            lyrics: None,
        }
    }
}

/// `<data_dir>/staging/<task id>`, optionally emptied first.
pub fn staging_dir(config: &Config, task_id: &str, fresh: bool) -> Result<PathBuf, JobError> {
    let dir = config.data_dir.join("staging").join(task_id);
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        JobError::transient(code::IO_ERROR, format!("staging {}: {e}", dir.display()))
    })?;
    Ok(dir)
}

/// The pipeline's staging directory for a task: on the library's file system.
fn pipeline_staging(config: &Config, task_id: &str) -> PathBuf {
    config.library_dir.join(".musicd-staging").join(task_id)
}

/// Removes every temporary file of a task (both stages).
pub fn clean_staging(config: &Config, task_id: &str) {
    let _ = std::fs::remove_dir_all(config.data_dir.join("staging").join(task_id));
    let _ = std::fs::remove_dir_all(pipeline_staging(config, task_id));
}

pub use crate::providers::fetch_options;

#[async_trait::async_trait]
impl super::Job for TrackOptions {
    const KIND: &'static str = KIND;
    const POOL: crate::queue::Pool = crate::queue::Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<super::Outcome, JobError> {
        run(ctx, self).await
    }
}

/// Runs the stage the task is in.
async fn run(ctx: &JobCtx, opts: TrackOptions) -> Result<Outcome, JobError> {
    let result = match ctx.task.pool.as_str() {
        "cpu" => process(ctx, opts).await,
        _ => fetch(ctx, opts).await,
    };
    if !matches!(result, Ok(Outcome::HandOff { .. })) {
        clean_staging(&ctx.shared.config, &ctx.task.id);
    }
    result
}

async fn fetch(ctx: &JobCtx, opts: TrackOptions) -> Result<Outcome, JobError> {
    let config = &ctx.shared.config;
    let dir = staging_dir(config, &ctx.task.id, true)?;
    if let Some(p) = ctx.shared.providers.get(&opts.provider)
        && p.is_catalog()
    {
        return super::catalog::fetch(ctx, opts, &dir).await;
    }
    let tmp = download(ctx, &opts.provider, &opts.track, &dir).await?;
    fetched(ctx, opts, &dir, &tmp).await
}

/// Downloads `track`'s audio into `dir` through `provider` (which may download it itself) or
/// the guarded fetcher, holding a connection slot of its host and a download slot of the
/// provider; returns the file.
pub(super) async fn download(
    ctx: &JobCtx,
    provider: &str,
    track: &TrackInfo,
    dir: &Path,
) -> Result<PathBuf, JobError> {
    let host = host_of(&track.url);
    let limits = &ctx.shared.limits;
    if limits.paused_until(&host).is_some() {
        ctx.progress("waiting", 0.0).await?;
    }
    let _host_slot = tokio::select! {
        p = limits.host_permit(&host) => p,
        _ = ctx.stop.cancelled() => return Err(JobError::Interrupted),
    };
    // The provider's own download slots (yt-dlp processes, an API's fair use).
    let _provider_slot = tokio::select! {
        p = ctx.shared.providers.slot(provider) => p,
        _ = ctx.stop.cancelled() => return Err(JobError::Interrupted),
    };
    let fetcher = Fetcher::new(ctx.shared.env.clone(), dir.to_path_buf(), ctx.stop.clone());
    ctx.while_reporting(
        "downloading",
        fetch_audio(
            &ctx.shared.env,
            provider,
            track,
            dir,
            &fetcher,
            &|d, t| ctx.report_bytes_sync(d, t),
            &ctx.stop,
        ),
    )
    .await
}

/// Fetches a track's audio into `dir`: by the provider itself when it downloads its own
/// (yt-dlp), else `track.url` over HTTP through the guard; a host that answers
/// `Retry-After` pauses every download from it. Shared by tracks and review previews.
pub async fn fetch_audio(
    env: &crate::providers::Env,
    provider: &str,
    track: &TrackInfo,
    dir: &Path,
    fetcher: &Fetcher,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<PathBuf, JobError> {
    let to = AudioFetch {
        staging: dir,
        progress,
        cancel,
    };
    let own = match env.providers.get(provider) {
        Some(p) => p.fetch_audio(track, &to, fetcher).await,
        None => None,
    };
    match own {
        Some(r) => r,
        None => {
            let url = &track.url;
            musicd_media::fetch::fetch(
                url,
                dir,
                &fetch_options(&env.config),
                &|p| progress(p.bytes_done, p.total),
                cancel,
            )
            .await
            .map_err(|e| {
                if let Some(wait) = e.retry_after {
                    // The host asked us to wait: every download from it waits, not just this one.
                    env.limits.pause_host(&host_of(url), wait);
                }
                super::pipeline_error(e)
            })
            .map(|f| f.keep())
        }
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Keeps a downloaded file as the task's source, fetches the cover, and hands the task to
/// the cpu pool.
pub(super) async fn fetched(
    ctx: &JobCtx,
    mut opts: TrackOptions,
    dir: &Path,
    tmp: &Path,
) -> Result<Outcome, JobError> {
    let fetch_opts = fetch_options(&ctx.shared.config);
    let dest = dir.join("source");
    std::fs::rename(tmp, &dest).transient_while(code::IO_ERROR, "keep download")?;
    opts.fetched = Some(dest.display().to_string());
    if let Some(cover_url) = opts.track.cover_url.clone() {
        let mut co = fetch_opts.clone();
        co.max_bytes = MAX_COVER_BYTES;
        match musicd_media::fetch::fetch(&cover_url, dir, &co, &|_| {}, &ctx.stop).await {
            Ok(c) => {
                let path = dir.join("cover");
                if std::fs::rename(c.keep(), &path).is_ok() {
                    opts.cover = Some(path.display().to_string());
                }
            }
            // A missing cover is not worth failing the track for.
            Err(e) => tracing::info!(task_id = ctx.task.id, "cover not fetched: {}", e.message),
        }
    }
    if opts.lyrics.is_none() {
        // Looked for, found or not: the cpu stage does not ask again.
        opts.lyrics = Some(
            super::lyrics::find(ctx, &opts, &dest)
                .await
                .unwrap_or_default(),
        );
    }
    Ok(Outcome::HandOff {
        pool: Pool::Cpu,
        stage: "process",
        options: serde_json::to_string(&opts).unwrap_or_default(),
    })
}

async fn process(ctx: &JobCtx, opts: TrackOptions) -> Result<Outcome, JobError> {
    let config = ctx.shared.config.clone();
    let Some(input) = opts
        .fetched
        .clone()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    else {
        // The download is gone (another host's staging, or cleaned): fetch again.
        let mut o = opts.clone();
        o.fetched = None;
        return Ok(Outcome::HandOff {
            pool: Pool::Io,
            stage: "fetch",
            options: serde_json::to_string(&o).unwrap_or_default(),
        });
    };
    let mut popts = config
        .media
        .process_options(
            opts.format.as_deref(),
            opts.quality.as_deref(),
            opts.path_template.as_deref(),
        )
        .map_err(|e| JobError::permanent(code::VALIDATION_ERROR, e))?;
    let staging = pipeline_staging(&config, &ctx.task.id);
    let _ = std::fs::remove_dir_all(&staging);
    popts.staging_dir = Some(staging);
    // A file the library already holds is never replaced without its owner's request.
    popts.replace_broken = false;
    // An upload's output counts against its owner's quota when it is placed: a small input
    // can decode into a much larger file.
    let quota = config.uploads.quota.as_u64();
    let room = match (&ctx.task.owner_id, opts.provider.as_str()) {
        (Some(owner), "upload") if quota > 0 => {
            let used = crate::db::library::used_bytes(&ctx.shared.db, owner)
                .await?
                .max(0) as u64;
            Some(quota.saturating_sub(used))
        }
        _ => None,
    };
    if let Some(room) = room {
        popts.max_output_bytes = room;
    }
    let t = &opts.track;
    let mut meta = t.meta(&opts.provider);
    meta.cover = opts.cover.as_deref().and_then(|p| std::fs::read(p).ok());
    // A direct URL: the file's own tags come first; the URL's file name is only a fallback.
    let meta = if opts.provider == "http"
        && let Ok(mut own) = musicd_media::tags::read_tags(&input)
    {
        own.fill_from(&meta);
        own.source_url = meta.source_url;
        own.source_id = meta.source_id;
        own
    } else if opts.provider == "upload" {
        // An upload: the form's fields first, then the file's own tags, then its name.
        let mut m = meta;
        if let Ok(own) = musicd_media::tags::read_tags(&input) {
            m.fill_from(&own);
        }
        if m.title.is_none() {
            m.title = opts.fallback_title.clone();
        }
        m.source_url = None;
        // Its identity is its bytes: the same file uploaded again is a skip.
        m.source_id = None;
        m
    } else {
        meta
    };
    // The index knows the whole library (scanned collections too): the same bytes, provider
    // id or ISRC already there is a skip, before any work.
    let hash_input = input.clone();
    let input_hash = tokio::task::spawn_blocking(move || crate::library::sha256_file(&hash_input))
        .await
        .ok()
        .and_then(Result::ok);
    match crate::library::already_present(&ctx.shared.db, input_hash.as_deref(), &meta).await {
        Ok(Some(existing)) => {
            super::record_output(ctx, &existing.path).await?;
            return Ok(Outcome::Skipped(format!(
                "already in the library as {}",
                rel(&config.library_dir, Path::new(&existing.path))
            )));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(task_id = ctx.task.id, "cannot ask the library index: {e:#}"),
    }
    let source_id = meta.source_id.clone();
    let mut meta = meta;
    let lyrics = match opts.lyrics.clone() {
        Some(l) => Some(l),
        // A file the request fetched itself (a direct link) skipped the io stage.
        None => super::lyrics::find(ctx, &opts, &input).await,
    };
    super::lyrics::tag(&config, lyrics.as_ref(), &mut meta);
    let cancel = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::Mutex::new((String::from("processing"), 0.0f64)));
    let library = config.library_dir.clone();
    let (c2, p2) = (cancel.clone(), progress.clone());
    let job = tokio::task::spawn_blocking(move || {
        musicd_media::process_file(
            &input,
            &popts,
            &meta,
            &library,
            &|stage, f| {
                if let Ok(mut p) = p2.lock() {
                    *p = (format!("{stage:?}").to_lowercase(), f);
                }
            },
            &c2,
        )
    });
    tokio::pin!(job);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let placed = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = ctx.stop.cancelled(), if !cancel.load(Ordering::Relaxed) => cancel.store(true, Ordering::Relaxed),
            _ = tick.tick() => {
                let (stage, f) = progress.lock().map(|p| p.clone()).unwrap_or_default();
                let _ = ctx.progress(&stage, f).await;
            }
        }
    };
    let placed = placed
        .permanent_while(code::INTERNAL_ERROR, "pipeline thread")?
        .map_err(|e| match room {
            Some(room) if e.code == musicd_media::ErrorCode::TooLarge => JobError::permanent(
                code::QUOTA_EXCEEDED,
                format!(
                    "{}; the upload quota has {room} bytes left (uploads.quota)",
                    e.message
                ),
            ),
            _ => super::pipeline_error(e),
        })?;
    if cancel.load(Ordering::Relaxed) {
        return Err(JobError::Interrupted);
    }
    let path = placed.path.display().to_string();
    if !placed.skipped {
        super::lyrics::write_lrc(&config, lyrics.as_ref(), &placed.path);
    }
    super::record_output(ctx, &path).await?;
    let origin = crate::library::Origin {
        owner: ctx.task.owner_id.clone(),
        source_hash: input_hash,
        source_id,
    };
    if let Err(e) = crate::library::index_file(&ctx.shared.db, &placed.path, origin).await {
        tracing::warn!(task_id = ctx.task.id, "cannot index {path}: {e:#}");
    }
    if placed.skipped {
        Ok(Outcome::Skipped(format!(
            "already in the library as {}",
            rel(&config.library_dir, &placed.path)
        )))
    } else {
        Ok(Outcome::Done)
    }
}

fn rel(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}
