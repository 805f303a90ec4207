//! The registry: every provider by name, with each one's request budget and download slots.

use super::*;

/// A provider's budget and download slots.
struct Budget {
    rate: Option<governor::DefaultDirectRateLimiter>,
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Budget {
    fn new(l: ProviderLimits) -> Self {
        Self {
            rate: l
                .requests_per_minute
                .and_then(std::num::NonZeroU32::new)
                .map(|n| {
                    let quota = governor::Quota::per_minute(n);
                    let quota = match l.burst.and_then(std::num::NonZeroU32::new) {
                        Some(b) => quota.allow_burst(b),
                        None => quota,
                    };
                    governor::RateLimiter::direct(quota)
                }),
            slots: l
                .concurrency
                .filter(|n| *n > 0)
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
        }
    }
}

/// The providers, by name.
#[derive(Clone)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    spotify: Arc<spotify::Spotify>,
    musicbrainz: Arc<musicbrainz::MusicBrainz>,
    budgets: Arc<std::collections::HashMap<&'static str, Budget>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.info().name))
            .finish()
    }
}

impl Registry {
    /// Every provider, configured.
    pub fn new(config: &crate::config::Config) -> Self {
        let spotify = Arc::new(spotify::Spotify::new(&config.providers.spotify));
        let musicbrainz = Arc::new(musicbrainz::MusicBrainz::new(&config.providers.musicbrainz));
        let providers: Vec<Arc<dyn Provider>> = vec![
            Arc::new(podcast::Podcast),
            Arc::new(http::Http),
            Arc::new(jamendo::Jamendo::new(&config.providers.jamendo)),
            Arc::new(ytdlp::Ytdlp::new(&config.providers.ytdlp)),
            spotify.clone(),
            Arc::new(deezer::Deezer::new(&config.providers.deezer)),
            musicbrainz.clone(),
            Arc::new(youtube_music::YoutubeMusic::new(
                &config.providers.youtube_music,
            )),
        ];
        let budgets = providers
            .iter()
            .map(|p| (p.info().name, Budget::new(p.limits())))
            .collect();
        Self {
            providers,
            spotify,
            musicbrainz,
            budgets: Arc::new(budgets),
        }
    }

    /// The MusicBrainz provider itself, for adding its ids to other catalogs' tracks.
    pub fn musicbrainz(&self) -> Arc<musicbrainz::MusicBrainz> {
        self.musicbrainz.clone()
    }

    /// The Spotify provider itself, for connecting an account.
    pub fn spotify(&self) -> Arc<spotify::Spotify> {
        self.spotify.clone()
    }

    /// Waits until `provider` may make one more request: its pause (after a `Retry-After`)
    /// has passed and its budget has room.
    pub async fn admit(
        &self,
        provider: &str,
        limits: &crate::limits::Limits,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), JobError> {
        let key = provider_key(provider);
        let wait = async {
            while let Some(until) = limits.paused_until(&key) {
                tokio::time::sleep_until(until.into()).await;
            }
            if let Some(rate) = self.budgets.get(provider).and_then(|b| b.rate.as_ref()) {
                rate.until_ready().await;
            }
        };
        tokio::select! {
            _ = wait => Ok(()),
            _ = cancel.cancelled() => Err(JobError::Interrupted),
        }
    }

    /// A download slot of `provider`, held while its audio downloads; `None` when it
    /// declares no concurrency limit.
    pub async fn slot(&self, provider: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.budgets.get(provider)?.slots.clone()?;
        slots.acquire_owned().await.ok()
    }

    /// Every provider's description.
    pub fn list(&self) -> Vec<ProviderInfo> {
        self.providers.iter().map(|p| p.info()).collect()
    }

    /// Every provider, in the order they are asked.
    pub fn all(&self) -> Vec<Arc<dyn Provider>> {
        self.providers.clone()
    }

    /// A provider by name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|p| p.info().name == name)
            .cloned()
    }
}
