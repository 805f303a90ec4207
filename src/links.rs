//! Link routing: any link a user pastes becomes a provider item (`spotify` `album` `4aaw…`),
//! a short link to follow first, or a web URL whose content decides (feed, audio, or a page
//! for yt-dlp). Parsed once at the edge; nothing here touches the network.

use url::Url;

/// Where a link goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// An item of a provider, by its kind and id.
    Item {
        /// Provider name (`spotify`, `deezer`, `musicbrainz`, `jamendo`, `ytdlp`).
        provider: &'static str,
        /// The provider's kind (`track`, `album`, `playlist`, `artist`, `release`, …).
        kind: &'static str,
        /// Id within the provider (for `ytdlp`, the page URL).
        id: String,
    },
    /// A provider's short link (`spotify.link/…`, `deezer.page.link/…`): its redirect names
    /// the item.
    Short {
        /// Provider name.
        provider: &'static str,
        /// The short link.
        url: Url,
    },
    /// Any other web URL: a feed, an audio file, or a page yt-dlp may understand, decided by
    /// its content.
    Web(Url),
}

/// Hosts whose pages go straight to yt-dlp (no need to fetch the page to know).
const YTDLP_HOSTS: &[&str] = &[
    "youtube.com",
    "youtu.be",
    "music.youtube.com",
    "soundcloud.com",
    "bandcamp.com",
    "vimeo.com",
    "mixcloud.com",
    "dailymotion.com",
    "audiomack.com",
];

/// Routes a link. Errors say what was recognised and why it cannot be used.
pub fn route(raw: &str) -> Result<Link, String> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix("spotify:") {
        return spotify_uri(rest);
    }
    let url = parse_web(raw)?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches("www.")
        .to_ascii_lowercase();
    let segs: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    match host.as_str() {
        "open.spotify.com" | "play.spotify.com" => spotify_path(&segs),
        "spotify.link" | "spotify.app.link" => Ok(Link::Short {
            provider: "spotify",
            url,
        }),
        "deezer.com" | "m.deezer.com" => deezer_path(&segs),
        "deezer.page.link" | "link.deezer.com" => Ok(Link::Short {
            provider: "deezer",
            url,
        }),
        "musicbrainz.org" | "beta.musicbrainz.org" => musicbrainz_path(&segs),
        "jamendo.com" => jamendo_path(&segs),
        h if YTDLP_HOSTS
            .iter()
            .any(|y| h == *y || h.ends_with(&format!(".{y}"))) =>
        {
            Ok(Link::Item {
                provider: "ytdlp",
                kind: "url",
                id: url.to_string(),
            })
        }
        _ => Ok(Link::Web(url)),
    }
}

/// An `http(s)` URL with a host.
fn parse_web(raw: &str) -> Result<Url, String> {
    // People paste links without a scheme (`open.spotify.com/track/…`); such a link needs a
    // dotted host, so plain words are not taken for one.
    let bare = !raw.contains("://");
    let with_scheme = if bare {
        format!("https://{raw}")
    } else {
        raw.to_string()
    };
    let u = Url::parse(&with_scheme).map_err(|e| format!("not a link musicd knows: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https links are supported, not {}:",
            u.scheme()
        ));
    }
    if u.host_str()
        .is_none_or(|h| h.is_empty() || bare && !h.contains('.'))
    {
        return Err(format!("not a link musicd knows: `{raw}`"));
    }
    Ok(u)
}

/// The kinds of the music catalogs' links.
const MUSIC_KINDS: &[&str] = &["track", "album", "playlist", "artist"];

/// The kind among `kinds` that a link's word names, or why there is none (`site` names the
/// site in the message; podcasts point to their feeds).
fn kind_in(site: &str, word: &str, kinds: &[&'static str]) -> Result<&'static str, String> {
    if let Some(k) = kinds.iter().copied().find(|k| *k == word) {
        return Ok(k);
    }
    Err(match word {
        "show" | "episode" | "podcast" => format!(
            "{site} podcasts (shows and episodes) are not supported: add the podcast's RSS feed instead"
        ),
        other => format!("a {site} `{other}` link is not something musicd downloads"),
    })
}

fn spotify_item(kind_word: &str, id: &str) -> Result<Link, String> {
    let kind = kind_in("Spotify", kind_word, MUSIC_KINDS)?;
    // Spotify ids are 22 base-62 characters.
    if id.len() != 22 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "`{id}` is not a Spotify id (22 letters and digits)"
        ));
    }
    Ok(Link::Item {
        provider: "spotify",
        kind,
        id: id.to_string(),
    })
}

/// `spotify:track:ID`, and the old `spotify:user:NAME:playlist:ID`.
fn spotify_uri(rest: &str) -> Result<Link, String> {
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [kind, id] => spotify_item(kind, id),
        ["user", _, kind, id] => spotify_item(kind, id),
        _ => Err(format!(
            "`spotify:{rest}` is not a Spotify URI musicd knows"
        )),
    }
}

/// `/[intl-xx/][embed/]{track,album,playlist,artist}/ID`, `/user/NAME/playlist/ID`.
fn spotify_path(segs: &[&str]) -> Result<Link, String> {
    let segs: Vec<&str> = segs
        .iter()
        .copied()
        .skip_while(|s| s.starts_with("intl-") || *s == "embed")
        .collect();
    match segs.as_slice() {
        ["user", _, kind, id, ..] => spotify_item(kind, id),
        [kind, id, ..] => spotify_item(kind, id),
        _ => Err("this Spotify link names no track, album, playlist or artist".into()),
    }
}

fn numeric_item(provider: &'static str, kind: &'static str, id: &str) -> Result<Link, String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{id}` is not a {provider} {kind} id (a number)"));
    }
    Ok(Link::Item {
        provider,
        kind,
        id: id.to_string(),
    })
}

/// `/[lang/]{track,album,playlist,artist}/ID`.
fn deezer_path(segs: &[&str]) -> Result<Link, String> {
    let segs = match segs.first() {
        Some(s) if s.len() == 2 || (s.len() == 5 && s.as_bytes()[2] == b'-') => &segs[1..],
        _ => segs,
    };
    match segs {
        [kind, id, ..] => numeric_item("deezer", kind_in("Deezer", kind, MUSIC_KINDS)?, id),
        _ => Err("this Deezer link names no track, album, playlist or artist".into()),
    }
}

/// `/{recording,release,release-group,artist}/MBID`.
fn musicbrainz_path(segs: &[&str]) -> Result<Link, String> {
    let [kind, id, ..] = segs else {
        return Err(
            "this MusicBrainz link names no recording, release, release group or artist".into(),
        );
    };
    let kind = kind_in(
        "MusicBrainz",
        kind,
        &["recording", "release", "release-group", "artist"],
    )?;
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(format!("`{id}` is not a MusicBrainz id (a UUID)"));
    }
    Ok(Link::Item {
        provider: "musicbrainz",
        kind,
        id: id.to_ascii_lowercase(),
    })
}

/// `/[lang/]{track,album,artist,playlist}/ID[/slug]`.
fn jamendo_path(segs: &[&str]) -> Result<Link, String> {
    let segs = match segs.first() {
        Some(s) if s.len() == 2 => &segs[1..],
        _ => segs,
    };
    match segs {
        [kind, id, ..] => numeric_item("jamendo", kind_in("Jamendo", kind, MUSIC_KINDS)?, id),
        _ => Err("this Jamendo link names no track, album, artist or playlist".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(provider: &'static str, kind: &'static str, id: &str) -> Link {
        Link::Item {
            provider,
            kind,
            id: id.to_string(),
        }
    }

    /// Real-world link forms (tracking parameters, locales, URIs, short links) and where they go.
    #[test]
    fn links_go_to_their_provider_kind_and_id() {
        const SP: &str = "4uLU6hMCjMI75M1A2tKUQC";
        const MB: &str = "b1a9c0e9-d987-4042-ae91-78d6a3267d69";
        let cases: Vec<(&str, Link)> = vec![
            (
                "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "track", SP),
            ),
            (
                "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=1a2b3c4d5e6f7890&utm_source=copy-link",
                item("spotify", "track", SP),
            ),
            (
                "https://open.spotify.com/intl-de/track/4uLU6hMCjMI75M1A2tKUQC?si=x",
                item("spotify", "track", SP),
            ),
            (
                "https://open.spotify.com/intl-pt/album/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "album", SP),
            ),
            (
                "open.spotify.com/playlist/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "playlist", SP),
            ),
            (
                "https://open.spotify.com/artist/4uLU6hMCjMI75M1A2tKUQC?si=abc",
                item("spotify", "artist", SP),
            ),
            (
                "https://open.spotify.com/embed/track/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "track", SP),
            ),
            (
                "https://open.spotify.com/user/someone/playlist/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "playlist", SP),
            ),
            (
                "https://play.spotify.com/album/4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "album", SP),
            ),
            (
                "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "track", SP),
            ),
            (
                "spotify:album:4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "album", SP),
            ),
            (
                "spotify:user:someone:playlist:4uLU6hMCjMI75M1A2tKUQC",
                item("spotify", "playlist", SP),
            ),
            (
                "  spotify:artist:4uLU6hMCjMI75M1A2tKUQC \n",
                item("spotify", "artist", SP),
            ),
            (
                "https://www.deezer.com/track/3135556",
                item("deezer", "track", "3135556"),
            ),
            (
                "https://www.deezer.com/en/album/302127?utm_source=deezer&utm_content=album-302127",
                item("deezer", "album", "302127"),
            ),
            (
                "https://deezer.com/fr/playlist/908622995",
                item("deezer", "playlist", "908622995"),
            ),
            (
                "http://www.deezer.com/us/artist/27",
                item("deezer", "artist", "27"),
            ),
            (
                "https://www.deezer.com/pt-br/track/3135556",
                item("deezer", "track", "3135556"),
            ),
            (
                "www.deezer.com/album/302127",
                item("deezer", "album", "302127"),
            ),
            (
                "https://m.deezer.com/track/3135556?deferredFl=1",
                item("deezer", "track", "3135556"),
            ),
            (
                "https://musicbrainz.org/recording/b1a9c0e9-d987-4042-ae91-78d6a3267d69",
                item("musicbrainz", "recording", MB),
            ),
            (
                "https://musicbrainz.org/release/B1A9C0E9-D987-4042-AE91-78D6A3267D69",
                item("musicbrainz", "release", MB),
            ),
            (
                "https://beta.musicbrainz.org/release-group/b1a9c0e9-d987-4042-ae91-78d6a3267d69/",
                item("musicbrainz", "release-group", MB),
            ),
            (
                "https://musicbrainz.org/artist/b1a9c0e9-d987-4042-ae91-78d6a3267d69/releases",
                item("musicbrainz", "artist", MB),
            ),
            (
                "https://www.jamendo.com/track/1886257/falling-leaves",
                item("jamendo", "track", "1886257"),
            ),
            (
                "https://www.jamendo.com/album/484803/summer",
                item("jamendo", "album", "484803"),
            ),
            (
                "https://www.jamendo.com/en/artist/362474/bensound",
                item("jamendo", "artist", "362474"),
            ),
            (
                "https://jamendo.com/playlist/500608900",
                item("jamendo", "playlist", "500608900"),
            ),
            (
                "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=RDdQw4w9WgXcQ",
                item(
                    "ytdlp",
                    "url",
                    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=RDdQw4w9WgXcQ",
                ),
            ),
            (
                "https://youtu.be/dQw4w9WgXcQ?si=abc",
                item("ytdlp", "url", "https://youtu.be/dQw4w9WgXcQ?si=abc"),
            ),
            (
                "https://music.youtube.com/playlist?list=OLAK5uy_abc",
                item(
                    "ytdlp",
                    "url",
                    "https://music.youtube.com/playlist?list=OLAK5uy_abc",
                ),
            ),
            (
                "https://artist.bandcamp.com/album/some-album",
                item(
                    "ytdlp",
                    "url",
                    "https://artist.bandcamp.com/album/some-album",
                ),
            ),
            (
                "https://soundcloud.com/artist/track-name",
                item("ytdlp", "url", "https://soundcloud.com/artist/track-name"),
            ),
        ];
        assert!(cases.len() >= 30);
        for (raw, want) in cases {
            assert_eq!(route(raw).as_ref(), Ok(&want), "{raw}");
        }
        for short in [
            "https://spotify.link/a1B2c3D4e5",
            "https://deezer.page.link/AbCdEf123",
            "https://link.deezer.com/s/30ABCdefg",
        ] {
            assert!(matches!(route(short), Ok(Link::Short { .. })), "{short}");
        }
        for web in [
            "https://example.com/podcast.xml",
            "http://127.0.0.1:8080/a.mp3",
            "http://[::127.0.0.1]:9/song.mp3",
            "http://nas:8080/music/a.flac",
        ] {
            assert!(matches!(route(web), Ok(Link::Web(_))), "{web}");
        }
    }

    /// What cannot be used says why.
    #[test]
    fn unusable_links_say_why() {
        for (raw, says) in [
            (
                "https://open.spotify.com/show/4uLU6hMCjMI75M1A2tKUQC",
                "RSS feed",
            ),
            ("spotify:episode:4uLU6hMCjMI75M1A2tKUQC", "RSS feed"),
            ("https://open.spotify.com/track/short", "not a Spotify id"),
            (
                "https://www.deezer.com/en/track/abc",
                "not a deezer track id",
            ),
            ("https://musicbrainz.org/release/not-a-uuid", "UUID"),
            (
                "https://musicbrainz.org/work/b1a9c0e9-d987-4042-ae91-78d6a3267d69",
                "`work`",
            ),
            ("ftp://example.com/a.mp3", "only http and https"),
            ("hello world", "not a link"),
            ("spotify:track", "not a Spotify URI"),
        ] {
            let err = route(raw).expect_err(raw);
            assert!(err.contains(says), "{raw}: {err}");
        }
    }
}
