//! `Fetcher`: what a provider reaches the network and the process with: guarded HTTP into a
//! staging directory, API calls under the provider's budget and pauses, stored credentials.

use super::*;

/// Fetch settings from the configuration.
pub fn fetch_options(config: &crate::config::Config) -> musicd_media::fetch::FetchOptions {
    musicd_media::fetch::FetchOptions {
        allow_private: config.fetch_allow_private,
        allow_ips: config.fetch_allow_ips.clone(),
        max_bytes: config.media.max_input_size.as_u64(),
        max_attempts: 3,
        // A longer `Retry-After` hands the task back to the ledger, where it shows as
        // `waiting` with its time, instead of holding a worker in a silent sleep.
        max_backoff: std::time::Duration::from_secs(2),
        proxy: Some(config.fetch.proxy.clone()).filter(|p| !p.is_empty()),
        ..Default::default()
    }
}

/// Guarded HTTP access for providers: SSRF checks, size caps, retries (the media crate's
/// fetch), into a private staging directory; and the process's configuration and stored
/// credentials.
pub struct Fetcher {
    /// Options for every request.
    pub options: musicd_media::fetch::FetchOptions,
    /// Where downloads go while in flight.
    pub staging: std::path::PathBuf,
    /// Stops a fetch.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Configuration, database, credentials, limits.
    pub env: Arc<Env>,
    /// Release types an artist request keeps (`album`, `single`, …); empty keeps all.
    pub release_types: Vec<String>,
}

impl Fetcher {
    /// A fetcher for `env`'s configuration, staging under `staging`.
    pub fn new(
        env: Arc<Env>,
        staging: std::path::PathBuf,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            options: fetch_options(&env.config),
            staging,
            cancel,
            env,
            release_types: Vec::new(),
        }
    }

    /// A stored credential of `provider`, or a clear error naming how to set it.
    pub async fn credential(&self, provider: &str, name: &str) -> Result<String, JobError> {
        match self.env.vault.get(&self.env.db, provider, name).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(JobError::permanent(
                code::CREDENTIALS_MISSING,
                format!(
                    "{provider} needs the credential `{name}`: an admin sets it with PUT /api/v1/credentials/{provider}/{name}"
                ),
            )),
            Err(e) => Err(JobError::permanent(
                code::CREDENTIALS_UNREADABLE,
                e.to_string(),
            )),
        }
    }

    /// Downloads a document of at most `max` bytes into memory. A host that asked us to wait
    /// (`Retry-After`) is waited for first; its answer pauses the host for every job here.
    pub async fn bytes(&self, url: &str, max: u64) -> Result<(Vec<u8>, Option<String>), JobError> {
        let mut opts = self.options.clone();
        opts.max_bytes = max;
        let f = self
            .host_paced(
                url,
                musicd_media::fetch::fetch(url, &self.staging, &opts, &|_| {}, &self.cancel),
            )
            .await?;
        let body = tokio::fs::read(f.path())
            .await
            .transient_while(code::IO_ERROR, "read download")?;
        Ok((body, f.content_type.clone()))
    }

    /// A document of at most `max` bytes, conditional on an earlier answer's `ETag` and
    /// `Last-Modified` (see [`musicd_media::fetch::fetch_document`]), paced like
    /// [`Fetcher::bytes`].
    pub async fn document(
        &self,
        url: &str,
        max: u64,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<musicd_media::fetch::Document, JobError> {
        let mut opts = self.options.clone();
        opts.max_bytes = max;
        self.host_paced(
            url,
            musicd_media::fetch::fetch_document(url, &opts, etag, last_modified, &self.cancel),
        )
        .await
    }

    /// Runs `fetch` once `url`'s host is no longer paused; a `Retry-After` in its answer pauses
    /// the host for every job in this process.
    async fn host_paced<T>(
        &self,
        url: &str,
        fetch: impl std::future::Future<Output = Result<T, musicd_media::PipelineError>>,
    ) -> Result<T, JobError> {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let limits = &self.env.limits;
        if let Some(until) = limits.paused_until(&host) {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = self.cancel.cancelled() => return Err(JobError::Interrupted),
            }
        }
        fetch.await.map_err(|e| {
            if let Some(wait) = e.retry_after {
                limits.pause_host(&host, wait);
            }
            crate::failure::pipeline_error(e)
        })
    }

    /// One call to `provider`'s API: waits while the provider is paused and for its request
    /// budget, then [`Fetcher::bytes`]. A `Retry-After` pauses the provider as a whole.
    pub async fn call(
        &self,
        provider: &str,
        url: &str,
        max: u64,
    ) -> Result<(Vec<u8>, Option<String>), JobError> {
        self.env
            .providers
            .admit(provider, &self.env.limits, &self.cancel)
            .await?;
        self.bytes(url, max).await.inspect_err(|e| {
            if let JobError::Transient {
                retry_after: Some(wait),
                ..
            } = e
            {
                self.env.limits.pause_host(&provider_key(provider), *wait);
            }
        })
    }
}

impl Fetcher {
    /// One call to `provider`'s API with any method and body, after its pause and budget; the
    /// answer comes back whatever its status, except 429 (the provider pauses for its
    /// `Retry-After`, and the task waits) and 5xx (retried later). `label` names the upstream
    /// in messages.
    pub async fn api(
        &self,
        provider: &str,
        label: &str,
        req: musicd_media::request::Request,
        max: u64,
    ) -> Result<musicd_media::request::Answer, JobError> {
        self.env
            .providers
            .admit(provider, &self.env.limits, &self.cancel)
            .await?;
        let mut opts = self.options.clone();
        opts.max_bytes = max;
        let a = musicd_media::request::send(&req, &opts, &self.cancel)
            .await
            .map_err(crate::failure::pipeline_error)?;
        match a.status {
            429 => {
                let wait = a.retry_after.unwrap_or(std::time::Duration::from_secs(5));
                self.env.limits.pause_host(&provider_key(provider), wait);
                Err(JobError::Transient {
                    code: code::RATE_LIMITED,
                    message: format!("{label} asked us to wait {} s (HTTP 429)", wait.as_secs()),
                    retry_after: Some(wait),
                })
            }
            s @ 500..=599 => Err(JobError::Transient {
                code: code::UPSTREAM_ERROR,
                message: format!("{label} answered HTTP {s}"),
                retry_after: a.retry_after,
            }),
            _ => Ok(a),
        }
    }
}

/// Reads an upstream's JSON answer; a malformed one is a transient `upstream_error` that
/// names the upstream and what was wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    label: &str,
    bytes: &[u8],
) -> Result<T, JobError> {
    serde_json::from_slice(bytes).map_err(|e| {
        JobError::transient(
            code::UPSTREAM_ERROR,
            format!("{label} answered with malformed JSON: {e}"),
        )
    })
}
