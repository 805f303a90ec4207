//! The other catalog and the other audio source: a MusicBrainz release lands with its ids,
//! label and Cover Art Archive cover, and other catalogs' tracks gain MusicBrainz ids by ISRC;
//! Jamendo's track search finds the audio of a catalog track, downloaded by the native
//! fetcher.

use serde_json::{Value, json};

use crate::catalogs::*;
use crate::helpers::*;
use crate::kit::Session;
use crate::matching::{deezer_track, tags_of};
use crate::ytdlp::require_ytdlp;

#[tokio::test]
async fn a_musicbrainz_release_lands_with_its_ids_and_cover_and_other_catalogs_gain_ids() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let (rel, rg, art) = (
        "0d044bb8-44a0-422c-b930-985bf55507b8",
        "a910aae0-1a94-4251-984d-8fd19b74b37d",
        "69ee3720-a7cb-4402-b48d-a02c366f2bcf",
    );
    let rec = |n: usize| format!("1c19fbb9-edce-49e1-a934-de6071dd79{n:02}");
    let tracks: Vec<Value> = (0..2).map(|n| json!({"id": format!("d09f8ba0-9645-37af-8592-28eefdf547{n:02}"), "position": n + 1,
        "number": (n + 1).to_string(), "title": format!("Brainy {n}"), "length": 21000,
        "artist-credit": [{"name": "Brain Band", "joinphrase": "", "artist": {"id": art, "name": "Brain Band"}}],
        "recording": {"id": rec(n), "title": format!("Brainy {n}"), "length": 21000, "isrcs": [format!("GBMBZ26000{n:02}")]}})).collect();
    cat.mb(&format!("release/{rel}"), json!({"id": rel, "title": "Brain Waves", "status": "Official", "date": "2011-06-14",
        "cover-art-archive": {"artwork": true, "count": 1, "front": true, "back": false},
        "artist-credit": [{"name": "Brain Band", "joinphrase": "", "artist": {"id": art, "name": "Brain Band"}}],
        "label-info": [{"catalog-number": "BW-1", "label": {"name": "Synapse"}}], "release-group": {"id": rg, "primary-type": "Album"},
        "media": [{"position": 1, "format": "Digital Media", "track-count": 2, "tracks": tracks}]}));
    cat.cover(rel, jpeg(scratch.path()));
    for n in 0..2 {
        cat.ytm(
            &format!("GBMBZ26000{n:02}"),
            true,
            vec![ytm_row(
                &format!("mb{n}"),
                &format!("Brainy {n}"),
                &["Brain Band"],
                Some("Brain Waves"),
                21,
                true,
                false,
            )],
        );
        cat.audio(&format!("mb{n}"), tone_of(scratch.path(), 21));
    }
    // A Deezer track whose ISRC MusicBrainz knows gains its recording id.
    cat.deezer(
        "track/9001",
        deezer_track(
            9001,
            "Known Elsewhere",
            &["Brain Band"],
            (90, "Other"),
            1,
            21,
            "GBMBZ2600099",
        ),
    );
    cat.mb(
        "isrc/GBMBZ2600099",
        json!({"isrc": "GBMBZ2600099", "recordings": [{"id": rec(99), "title": "Known Elsewhere",
        "artist-credit": [{"name": "Brain Band", "artist": {"id": art, "name": "Brain Band"}}]}]}),
    );
    cat.ytm(
        "GBMBZ2600099",
        true,
        vec![ytm_row(
            "mb99",
            "Known Elsewhere",
            &["Brain Band"],
            Some("Other"),
            21,
            true,
            false,
        )],
    );
    cat.audio("mb99", tone_of(scratch.path(), 21));
    let app = TestApp::start(|c| cat.configure(c)).await;
    let s = Session::admin(&app).await;

    let id = s
        .download(&format!("https://musicbrainz.org/release/{rel}"))
        .await;
    s.wait_done(&id).await;
    for (n, k) in s.children(&id).await.iter().enumerate() {
        let tags = tags_of(k);
        assert_eq!(tags["title"], json!(format!("Brainy {n}")));
        assert_eq!(tags["musicbrainz_albumid"], json!(rel), "{tags}");
        assert!(
            tags.to_string().contains(&rec(n)),
            "the recording id: {tags}"
        );
        assert_eq!(tags["organization"], json!("Synapse"), "{tags}");
        assert_eq!(tags["cover"], json!(true), "{tags}");
    }
    let id = s.download("https://www.deezer.com/track/9001").await;
    s.wait_done(&id).await;
    let tags = tags_of(&s.children(&id).await[0]);
    assert!(
        tags.to_string().contains(&rec(99)),
        "enriched with the recording id: {tags}"
    );
    // The same recording from another catalog (same ISRC) is one file: a skip, no search.
    cat.deezer(
        "track/9002",
        deezer_track(
            9002,
            "Brainy 0",
            &["Brain Band"],
            (90, "Other"),
            1,
            21,
            "GBMBZ2600000",
        ),
    );
    let searches = cat.searches().len();
    let id = s.download("https://www.deezer.com/track/9002").await;
    s.wait_done(&id).await;
    let child = &s.children(&id).await[0];
    assert_eq!(child.status, "skipped", "{child:?}");
    assert!(
        child
            .error
            .as_deref()
            .unwrap_or("")
            .contains("already in the library"),
        "{child:?}"
    );
    assert_eq!(cat.searches().len(), searches);
    assert!(cat.hits("mb/") >= 2);
    app.stop().await;
}

#[tokio::test]
async fn jamendo_search_finds_a_catalog_tracks_audio() {
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    cat.deezer(
        "track/9100",
        deezer_track(
            9100,
            "Free Tune",
            &["Open Artist"],
            (91, "Commons"),
            1,
            21,
            "QZJAM2600001",
        ),
    );
    let row = |id: &str, name: &str, secs: u64| {
        json!({"id": id, "name": name, "duration": secs, "artist_name": "Open Artist",
        "album_name": "Commons", "position": 1, "audio": cat.url(&format!("watch/{id}.mp3")),
        "audiodownload": cat.url(&format!("watch/{id}.mp3")), "audiodownload_allowed": true})
    };
    cat.jamendo(
        "Open Artist - Free Tune",
        vec![
            row("j1", "Free Tune (Remix)", 21),
            row("j2", "Free Tune", 21),
        ],
    );
    cat.audio("j1", tone_of(scratch.path(), 21));
    cat.audio("j2", tone_of(scratch.path(), 21));
    let app = TestApp::start(|c| {
        cat.configure(c);
        c.providers.matching.sources = vec!["jamendo".into()];
    })
    .await;
    let s = Session::admin(&app).await;
    // Without its client id Jamendo is passed over: nothing was searched.
    let id = s.download("https://www.deezer.com/track/9100").await;
    s.wait_ended(&id).await;
    let child = &s.children(&id).await[0];
    assert_eq!(child.error_code.as_deref(), Some("no_match"), "{child:?}");
    assert_eq!(cat.hits("jamendo/tracks"), 0);
    s.put(
        "/credentials/jamendo/client_id",
        json!({"value": "test-client-id-0042"}),
    )
    .await;
    let id = s.download("https://www.deezer.com/track/9100").await;
    s.wait_done(&id).await;
    let tags = tags_of(&s.children(&id).await[0]);
    assert!(
        tags["source_url"].is_null() || tags.to_string().contains("/watch/j2.mp3"),
        "{tags}"
    );
    assert_eq!(cat.hits("watch/j2"), 1);
    assert_eq!(cat.hits("watch/j1"), 0, "the remix was not downloaded");
    assert_eq!(tags["title"], json!("Free Tune"));
    app.stop().await;
}
