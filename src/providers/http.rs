//! `http`: a direct audio URL. Metadata comes from the file's own tags (read by the
//! pipeline), then the URL's file name.

use super::{Fetcher, Provider, ProviderInfo, Resolved, TrackInfo, url_stem};
use crate::failure::JobError;
use crate::failure::code;

/// The direct-URL provider.
pub struct Http;

#[async_trait::async_trait]
impl Provider for Http {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "http",
            kinds: &["track"],
            description: "A direct link to an audio file; tags come from the file, then its name.",
        }
    }

    async fn resolve(&self, kind: &str, id: &str, _fetch: &Fetcher) -> Result<Resolved, JobError> {
        if kind != "track" {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("http has no kind `{kind}`"),
            ));
        }
        Ok(Resolved::Track {
            track: TrackInfo {
                id: id.to_string(),
                url: id.to_string(),
                title: url_stem(id),
                ..TrackInfo::default()
            },
        })
    }
}
