//! `podcast`: RSS 2.0 and Atom feeds with the iTunes extensions. The feed is a playlist,
//! each episode a track with its enclosure; the GUID is its identity; the feed image is the
//! cover.

use super::{Fetcher, Provider, ProviderInfo, Resolved, TrackInfo};
use crate::failure::JobError;
use crate::failure::code;

/// The podcast provider.
pub struct Podcast;

#[async_trait::async_trait]
impl Provider for Podcast {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "podcast",
            kinds: &["feed"],
            description: "RSS 2.0 / Atom podcast feeds (iTunes extensions): each episode's enclosure.",
        }
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        if kind != "feed" {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("podcast has no kind `{kind}`"),
            ));
        }
        let max = fetch.env.config.media.max_feed_size.as_u64();
        let (body, _) = fetch.bytes(id, max).await.map_err(|e| over_cap(e, max))?;
        parse(&body, id)
    }
}

/// A feed over `media.max_feed_size`.
pub fn too_large(max: u64) -> JobError {
    JobError::permanent(
        code::FEED_TOO_LARGE,
        format!("the feed is larger than media.max_feed_size ({max} bytes)"),
    )
}

/// `too_large` from reading a feed becomes [`too_large`]; other errors pass.
pub fn over_cap(e: JobError, max: u64) -> JobError {
    if e.code() == "too_large" {
        too_large(max)
    } else {
        e
    }
}

/// Parses a feed document into tracks, in the feed's order.
pub fn parse(body: &[u8], feed_url: &str) -> Result<Resolved, JobError> {
    let _ = feed_url;
    let feed = feed_rs::parser::parse(body).map_err(|e| {
        JobError::permanent(
            code::INVALID_FEED,
            format!("not a valid RSS or Atom feed: {e}"),
        )
    })?;
    let feed_title = feed
        .title
        .as_ref()
        .map(|t| t.content.trim().to_string())
        .filter(|t| !t.is_empty());
    let author = feed
        .authors
        .iter()
        .find_map(|p| p.name.clone().filter(|n| !n.trim().is_empty()))
        .or_else(|| feed_title.clone());
    let cover = feed
        .logo
        .as_ref()
        .or(feed.icon.as_ref())
        .map(|i| i.uri.clone());
    let mut tracks = Vec::new();
    let mut published = Vec::new();
    for entry in &feed.entries {
        let enclosure = entry
            .media
            .iter()
            .flat_map(|m| m.content.iter())
            .find_map(|c| c.url.as_ref().map(|u| u.to_string()))
            .or_else(|| {
                entry
                    .links
                    .iter()
                    .find(|l| l.rel.as_deref() == Some("enclosure"))
                    .map(|l| l.href.clone())
            });
        let Some(url) = enclosure else { continue };
        let id = if entry.id.trim().is_empty() {
            url.clone()
        } else {
            entry.id.clone()
        };
        let date = entry
            .published
            .or(entry.updated)
            .map(|d| d.format("%Y-%m-%d").to_string());
        let summary = entry
            .summary
            .as_ref()
            .map(|s| s.content.trim().chars().take(1000).collect::<String>())
            .filter(|s| !s.is_empty());
        let episode_author = entry
            .authors
            .iter()
            .find_map(|p| p.name.clone())
            .or_else(|| author.clone());
        let episode_cover = entry
            .media
            .iter()
            .flat_map(|m| m.thumbnails.iter())
            .map(|t| t.image.uri.clone())
            .next()
            .or_else(|| cover.clone());
        published.push(entry.published.or(entry.updated));
        tracks.push(TrackInfo {
            id,
            url,
            title: entry.title.as_ref().map(|t| t.content.trim().to_string()),
            artists: episode_author.into_iter().collect(),
            album: feed_title.clone(),
            album_artist: author.clone(),
            track_number: None,
            track_total: None,
            date,
            genres: vec!["Podcast".into()],
            comment: summary,
            cover_url: episode_cover,
            ..TrackInfo::default()
        });
    }
    // Number episodes from the oldest: by date when every episode has one, else by the
    // usual newest-first order of feeds. The list itself keeps the feed's order.
    let total = tracks.len() as u32;
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    if published.iter().all(Option::is_some) {
        order.sort_by_key(|&i| (published[i], i));
    } else {
        order.reverse();
    }
    for (n, &i) in order.iter().enumerate() {
        tracks[i].track_number = Some(n as u32 + 1);
        tracks[i].track_total = Some(total);
    }
    Ok(Resolved::Collection {
        collection: "feed".into(),
        title: feed_title,
        tracks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_with_itunes() {
        let xml = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>Show</title><itunes:author>Host</itunes:author>
<itunes:image href="http://x/cover.jpg"/>
<item><title>Two</title><guid>g2</guid><pubDate>Tue, 02 Jan 2024 00:00:00 GMT</pubDate>
<enclosure url="http://x/2.mp3" type="audio/mpeg" length="1"/></item>
<item><title>One</title><guid>g1</guid><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate>
<enclosure url="http://x/1.mp3" type="audio/mpeg" length="1"/></item>
<item><title>No audio</title><guid>g0</guid></item>
</channel></rss>"#;
        let Resolved::Collection { title, tracks, .. } =
            parse(xml.as_bytes(), "http://x/feed").unwrap()
        else {
            panic!()
        };
        assert_eq!(title.as_deref(), Some("Show"));
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].id, "g2");
        assert_eq!(tracks[0].url, "http://x/2.mp3");
        assert_eq!(tracks[0].track_number, Some(2));
        assert_eq!(tracks[1].date.as_deref(), Some("2024-01-01"));
        assert_eq!(tracks[0].album_artist.as_deref(), Some("Host"));
        assert!(
            tracks[0]
                .cover_url
                .as_deref()
                .is_some_and(|c| c.ends_with("cover.jpg"))
        );
    }
}
