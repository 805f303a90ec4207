//! Tags and cover art with lofty: write a track's metadata (and loudness values) once, on the
//! staged file before placement; read untrusted source tags under an allocation limit.

use std::path::Path;

use lofty::config::{GlobalOptions, ParseOptions, ParsingMode, WriteOptions, apply_global_options};
use lofty::file::{AudioFile, TaggedFileExt};
use lofty::id3::v2::Id3v2Tag;
use lofty::ogg::tag::VorbisComments;
use lofty::picture::{MimeType, Picture, PictureType};
use lofty::probe::Probe;
use lofty::tag::{Accessor, ItemKey, ItemValue, Tag, TagExt, TagItem, TagType};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, PipelineError, Result};
use crate::loudness::{format_gain, format_peak};

/// Largest allocation lofty may make for one tag item while reading untrusted files.
pub const TAG_ALLOCATION_LIMIT: usize = 16 * 1024 * 1024;

/// What we know about a track. Every field is optional; missing ones are simply not written
/// (and, on `copy`, the source's own value is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackMeta {
    /// Track title.
    pub title: Option<String>,
    /// Track artists in order; joined with [`TagOptions::artist_separator`] for the artist tag.
    pub artists: Vec<String>,
    /// Album title.
    pub album: Option<String>,
    /// Album artist.
    pub album_artist: Option<String>,
    /// Track number within the disc.
    pub track_number: Option<u32>,
    /// Number of tracks on the disc.
    pub track_total: Option<u32>,
    /// Disc number.
    pub disc_number: Option<u32>,
    /// Number of discs.
    pub disc_total: Option<u32>,
    /// Release date, `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Genres.
    pub genres: Vec<String>,
    /// ISRC.
    pub isrc: Option<String>,
    /// Record label.
    pub label: Option<String>,
    /// Free comment.
    pub comment: Option<String>,
    /// Where the audio came from.
    pub source_url: Option<String>,
    /// Provider's id for the track; part of the identity used to skip duplicates.
    pub source_id: Option<String>,
    /// MusicBrainz recording id.
    pub musicbrainz_recording_id: Option<String>,
    /// MusicBrainz release (album) id.
    pub musicbrainz_release_id: Option<String>,
    /// MusicBrainz release group id.
    pub musicbrainz_release_group_id: Option<String>,
    /// MusicBrainz artist id.
    pub musicbrainz_artist_id: Option<String>,
    /// MusicBrainz album artist id.
    pub musicbrainz_album_artist_id: Option<String>,
    /// MusicBrainz release track id.
    pub musicbrainz_track_id: Option<String>,
    /// Unsynchronised lyrics.
    pub lyrics: Option<String>,
    /// Language of the lyrics (ISO 639-2); `zxx` marks an instrumental.
    pub language: Option<String>,
    /// Front cover image bytes (JPEG or PNG).
    #[serde(skip)]
    pub cover: Option<Vec<u8>>,
}

impl TrackMeta {
    /// The year part of the date, if it starts with four digits.
    pub fn year(&self) -> Option<String> {
        let d = self.date.as_deref()?;
        let y: String = d.chars().take(4).collect();
        (y.len() == 4 && y.chars().all(|c| c.is_ascii_digit())).then_some(y)
    }

    /// Fill fields that are `None`/empty here from `other` (used to keep source tags).
    pub fn fill_from(&mut self, other: &TrackMeta) {
        macro_rules! fill {
            ($($f:ident),*) => {$( if self.$f.is_none() { self.$f = other.$f.clone(); } )*};
        }
        fill!(
            title,
            album,
            album_artist,
            track_number,
            track_total,
            disc_number,
            disc_total,
            date,
            isrc,
            label,
            comment,
            source_url,
            source_id,
            musicbrainz_recording_id,
            musicbrainz_release_id,
            musicbrainz_release_group_id,
            musicbrainz_artist_id,
            musicbrainz_album_artist_id,
            musicbrainz_track_id,
            lyrics,
            language,
            cover
        );
        if self.artists.is_empty() {
            self.artists = other.artists.clone();
        }
        if self.genres.is_empty() {
            self.genres = other.genres.clone();
        }
    }
}

/// How tags are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagOptions {
    /// Separator used to join several artists into the single artist tag.
    pub artist_separator: String,
    /// Covers larger than this are not embedded (they are still written beside the album).
    pub max_embedded_cover_bytes: usize,
}

impl Default for TagOptions {
    fn default() -> Self {
        Self {
            artist_separator: "; ".into(),
            max_embedded_cover_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Loudness values to write. Opus files get R128 gains; everything else ReplayGain.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GainTags {
    /// Track (gain dB, peak linear).
    pub track: Option<(f64, f64)>,
    /// Album (gain dB, peak linear).
    pub album: Option<(f64, f64)>,
    /// Opus R128 track gain (Q7.8).
    pub r128_track: Option<i16>,
    /// Opus R128 album gain (Q7.8).
    pub r128_album: Option<i16>,
}

fn tag_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::new(ErrorCode::TagError, e.to_string())
}

fn limit_allocations() {
    // lofty's options are thread-local; set them on whichever thread is about to parse.
    apply_global_options(GlobalOptions::new().allocation_limit(TAG_ALLOCATION_LIMIT));
}

/// Detect an image type from its bytes.
pub fn image_mime(data: &[u8]) -> Option<MimeType> {
    if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(MimeType::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(MimeType::Png)
    } else {
        None
    }
}

fn build_tag(
    tag_type: TagType,
    base: Option<Tag>,
    meta: &TrackMeta,
    gains: &GainTags,
    opts: &TagOptions,
) -> Tag {
    let mut tag = match base {
        Some(mut t) => {
            t.re_map(tag_type);
            t
        }
        None => Tag::new(tag_type),
    };
    let mut set = |key: ItemKey, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            tag.remove_key(key);
            tag.insert_text(key, v);
        }
    };
    set(ItemKey::TrackTitle, meta.title.clone());
    if !meta.artists.is_empty() {
        set(
            ItemKey::TrackArtist,
            Some(meta.artists.join(&opts.artist_separator)),
        );
    }
    set(ItemKey::AlbumTitle, meta.album.clone());
    set(ItemKey::AlbumArtist, meta.album_artist.clone());
    set(
        ItemKey::TrackNumber,
        meta.track_number.map(|n| n.to_string()),
    );
    set(ItemKey::TrackTotal, meta.track_total.map(|n| n.to_string()));
    set(ItemKey::DiscNumber, meta.disc_number.map(|n| n.to_string()));
    set(ItemKey::DiscTotal, meta.disc_total.map(|n| n.to_string()));
    set(ItemKey::RecordingDate, meta.date.clone());
    set(ItemKey::Isrc, meta.isrc.clone());
    set(ItemKey::Label, meta.label.clone());
    set(ItemKey::Comment, meta.comment.clone());
    set(
        ItemKey::MusicBrainzRecordingId,
        meta.musicbrainz_recording_id.clone(),
    );
    set(
        ItemKey::MusicBrainzReleaseId,
        meta.musicbrainz_release_id.clone(),
    );
    set(
        ItemKey::MusicBrainzReleaseGroupId,
        meta.musicbrainz_release_group_id.clone(),
    );
    set(
        ItemKey::MusicBrainzArtistId,
        meta.musicbrainz_artist_id.clone(),
    );
    set(
        ItemKey::MusicBrainzReleaseArtistId,
        meta.musicbrainz_album_artist_id.clone(),
    );
    set(
        ItemKey::MusicBrainzTrackId,
        meta.musicbrainz_track_id.clone(),
    );
    // lofty maps `Lyrics` to no ID3v2 frame (it may hold LRC): plain lyrics there are USLT.
    let lyrics_key = if tag_type == TagType::Id3v2 {
        ItemKey::UnsyncLyrics
    } else {
        ItemKey::Lyrics
    };
    set(lyrics_key, meta.lyrics.clone());
    set(ItemKey::Language, meta.language.clone());
    if tag_type == TagType::VorbisComments {
        set(
            ItemKey::R128TrackGain,
            gains.r128_track.map(|g| g.to_string()),
        );
        set(
            ItemKey::R128AlbumGain,
            gains.r128_album.map(|g| g.to_string()),
        );
    }
    if gains.r128_track.is_none() {
        set(
            ItemKey::ReplayGainTrackGain,
            gains.track.map(|g| format_gain(g.0)),
        );
        set(
            ItemKey::ReplayGainTrackPeak,
            gains.track.map(|g| format_peak(g.1)),
        );
        set(
            ItemKey::ReplayGainAlbumGain,
            gains.album.map(|g| format_gain(g.0)),
        );
        set(
            ItemKey::ReplayGainAlbumPeak,
            gains.album.map(|g| format_peak(g.1)),
        );
    }
    if meta.artists.len() > 1 {
        tag.remove_key(ItemKey::TrackArtists);
        for a in &meta.artists {
            tag.push(TagItem::new(
                ItemKey::TrackArtists,
                ItemValue::Text(a.clone()),
            ));
        }
    }
    if !meta.genres.is_empty() {
        tag.remove_key(ItemKey::Genre);
        tag.set_genre(meta.genres.join(&opts.artist_separator));
    }
    if let Some(url) = meta.source_url.as_ref().filter(|u| !u.is_empty())
        && tag_type == TagType::Id3v2
    {
        tag.remove_key(ItemKey::AudioSourceUrl);
        tag.insert(TagItem::new(
            ItemKey::AudioSourceUrl,
            ItemValue::Locator(url.clone()),
        ));
    }
    if let Some(cover) = meta.cover.as_ref()
        && cover.len() <= opts.max_embedded_cover_bytes
        && let Some(mime) = image_mime(cover)
    {
        tag.remove_picture_type(PictureType::CoverFront);
        tag.push_picture(
            Picture::unchecked(cover.clone())
                .pic_type(PictureType::CoverFront)
                .mime_type(mime)
                .build(),
        );
    }
    tag
}

/// Write `meta` and `gains` into the audio file at `path` (a staged file, never one in the
/// library). With `keep_existing`, the file's own tags are the base and only fields given in
/// `meta` replace theirs (used for `copy`).
pub fn write_tags(
    path: &Path,
    meta: &TrackMeta,
    gains: &GainTags,
    opts: &TagOptions,
    keep_existing: bool,
) -> Result<()> {
    limit_allocations();
    let tagged = Probe::open(path)
        .map_err(tag_err)?
        .guess_file_type()
        .map_err(tag_err)?
        .options(ParseOptions::new().parsing_mode(ParsingMode::BestAttempt))
        .read()
        .map_err(tag_err)?;
    let tag_type = tagged.primary_tag_type();
    let base = if keep_existing {
        tagged
            .primary_tag()
            .cloned()
            .or_else(|| tagged.first_tag().cloned())
    } else {
        None
    };
    let tag = build_tag(tag_type, base, meta, gains, opts);
    let write = WriteOptions::default();
    match tag_type {
        TagType::VorbisComments => {
            let mut vc: VorbisComments = tag.into();
            vc.set_vendor(format!("musicd {}", env!("CARGO_PKG_VERSION")));
            if let Some(url) = meta.source_url.as_ref().filter(|u| !u.is_empty()) {
                vc.insert("SOURCE_URL".into(), url.clone());
            }
            if let Some(id) = meta.source_id.as_ref().filter(|u| !u.is_empty()) {
                vc.insert("MUSICD_SOURCE_ID".into(), id.clone());
            }
            vc.save_to_path(path, write).map_err(tag_err)?;
        }
        TagType::Id3v2 => {
            let mut id3: Id3v2Tag = tag.into();
            if let Some(id) = meta.source_id.as_ref().filter(|u| !u.is_empty()) {
                id3.insert_user_text("MUSICD_SOURCE_ID".into(), id.clone());
            }
            id3.save_to_path(path, write).map_err(tag_err)?;
        }
        _ => {
            tag.save_to_path(path, write).map_err(tag_err)?;
        }
    }
    Ok(())
}

/// Read the tags of an untrusted file into a [`TrackMeta`] (cover included), with lofty's
/// allocation limit in force. Files without tags give an empty `TrackMeta`.
pub fn read_tags(path: &Path) -> Result<TrackMeta> {
    // A parser panic on a hostile file must fail this file only.
    std::panic::catch_unwind(|| read_tags_inner(path))
        .unwrap_or_else(|_| Err(tag_err("malformed tags crashed the parser")))
}

/// [`read_tags`] over bytes in memory, for the fuzz targets: the same parser, options and
/// allocation limit.
pub fn read_tags_bytes(data: &[u8]) -> Result<TrackMeta> {
    std::panic::catch_unwind(|| {
        limit_allocations();
        read_tags_from(Probe::new(std::io::Cursor::new(data)))
    })
    .unwrap_or_else(|_| Err(tag_err("malformed tags crashed the parser")))
}

fn read_tags_inner(path: &Path) -> Result<TrackMeta> {
    limit_allocations();
    // lofty has no Matroska/WebM support: their tags come from the demuxer.
    if crate::probe::sniff_file(path).ok() == Some(crate::probe::Container::Matroska) {
        let mut stream = crate::decode::AudioDecoderStream::open(path)?;
        let mut m = from_container_tags(&stream.container_tags());
        // ffmpeg writes the title as the segment's Info/Title, which the demuxer reads but
        // does not report.
        if m.title.is_none() {
            m.title = crate::probe::matroska_title(path);
        }
        return Ok(m);
    }
    read_tags_from(Probe::open(path).map_err(tag_err)?)
}

/// Tags a demuxer read (Matroska `SimpleTag`s).
fn from_container_tags(tags: &[symphonia::core::meta::Tag]) -> TrackMeta {
    let mut m = TrackMeta::default();
    for t in tags {
        // The keys ffmpeg, mkvpropedit and most taggers write are taken by name: they write
        // them without a target, which the demuxer reads as album level (ARTIST would become
        // the album artist), while they mean the file's one track.
        let value = t.raw.value.to_string();
        let v = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        // The demuxer names a key with its target: `ALBUM@ARTIST`.
        let key = t.raw.key.rsplit('@').next().unwrap_or_default();
        match key.to_ascii_uppercase().as_str() {
            "TITLE" => m.title = m.title.take().or(v),
            "ARTIST" => m.artists.extend(v.filter(|a| !m.artists.contains(a))),
            "ALBUM" => m.album = m.album.take().or(v),
            "ALBUM_ARTIST" | "ALBUMARTIST" => m.album_artist = m.album_artist.take().or(v),
            "DATE" | "DATE_RELEASED" => m.date = m.date.take().or(v),
            "GENRE" => m.genres.extend(v),
            "ISRC" => m.isrc = m.isrc.take().or(v),
            _ => {
                if let Some(std) = &t.std {
                    standard(&mut m, std);
                }
            }
        }
    }
    m
}

/// One of the demuxer's standard tags into `m`, unless `m` has that field already.
fn standard(m: &mut TrackMeta, std: &symphonia::core::meta::StandardTag) {
    use symphonia::core::meta::StandardTag as S;
    let text = |v: &std::sync::Arc<String>| Some(v.trim().to_string()).filter(|s| !s.is_empty());
    let count = |n: u64| u32::try_from(n).ok().filter(|n| *n > 0);
    match std {
        S::TrackNumber(n) => m.track_number = m.track_number.or(count(*n)),
        S::TrackTotal(n) => m.track_total = m.track_total.or(count(*n)),
        S::DiscNumber(n) => m.disc_number = m.disc_number.or(count(*n)),
        S::DiscTotal(n) => m.disc_total = m.disc_total.or(count(*n)),
        S::ReleaseDate(v) | S::RecordingDate(v) => m.date = m.date.take().or_else(|| text(v)),
        S::ReleaseYear(y) | S::RecordingYear(y) => {
            m.date = m.date.take().or_else(|| Some(y.to_string()));
        }
        S::Label(v) => m.label = m.label.take().or_else(|| text(v)),
        S::Comment(v) => m.comment = m.comment.take().or_else(|| text(v)),
        S::MusicBrainzRecordingId(v) => {
            m.musicbrainz_recording_id = m.musicbrainz_recording_id.take().or_else(|| text(v));
        }
        S::MusicBrainzAlbumId(v) => {
            m.musicbrainz_release_id = m.musicbrainz_release_id.take().or_else(|| text(v));
        }
        _ => {}
    }
}

fn read_tags_from<R: std::io::Read + std::io::Seek>(probe: Probe<R>) -> Result<TrackMeta> {
    let tagged = probe
        .guess_file_type()
        .map_err(tag_err)?
        .options(
            ParseOptions::new()
                .parsing_mode(ParsingMode::BestAttempt)
                .read_properties(false),
        )
        .read()
        .map_err(tag_err)?;
    let Some(tag) = tagged.primary_tag().or_else(|| tagged.first_tag()) else {
        return Ok(TrackMeta::default());
    };
    let s = |k: ItemKey| tag.get_string(k).map(str::to_owned);
    let n = |k: ItemKey| {
        tag.get_string(k)
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let mut artists: Vec<String> = tag
        .get_strings(ItemKey::TrackArtists)
        .map(str::to_owned)
        .collect();
    if artists.is_empty() {
        artists = tag
            .get_strings(ItemKey::TrackArtist)
            .map(str::to_owned)
            .collect();
    }
    Ok(TrackMeta {
        title: s(ItemKey::TrackTitle),
        artists,
        album: s(ItemKey::AlbumTitle),
        album_artist: s(ItemKey::AlbumArtist),
        track_number: tag.track().or_else(|| n(ItemKey::TrackNumber)),
        track_total: tag.track_total(),
        disc_number: tag.disk(),
        disc_total: tag.disk_total(),
        date: s(ItemKey::RecordingDate).or_else(|| s(ItemKey::Year)),
        genres: tag.get_strings(ItemKey::Genre).map(str::to_owned).collect(),
        isrc: s(ItemKey::Isrc),
        label: s(ItemKey::Label),
        comment: s(ItemKey::Comment),
        source_url: None,
        source_id: None,
        musicbrainz_recording_id: s(ItemKey::MusicBrainzRecordingId),
        musicbrainz_release_id: s(ItemKey::MusicBrainzReleaseId),
        musicbrainz_release_group_id: s(ItemKey::MusicBrainzReleaseGroupId),
        musicbrainz_artist_id: s(ItemKey::MusicBrainzArtistId),
        musicbrainz_album_artist_id: s(ItemKey::MusicBrainzReleaseArtistId),
        musicbrainz_track_id: s(ItemKey::MusicBrainzTrackId),
        lyrics: s(ItemKey::Lyrics).or_else(|| s(ItemKey::UnsyncLyrics)),
        language: s(ItemKey::Language),
        cover: tag
            .get_picture_type(PictureType::CoverFront)
            .or_else(|| tag.pictures().first())
            .map(|p| p.data().to_vec()),
    })
}

/// Check that the audio properties lofty reads are sane (used by verification).
pub fn read_duration(path: &Path) -> Result<std::time::Duration> {
    limit_allocations();
    let tagged = Probe::open(path)
        .map_err(tag_err)?
        .guess_file_type()
        .map_err(tag_err)?
        .read()
        .map_err(tag_err)?;
    Ok(tagged.properties().duration())
}
