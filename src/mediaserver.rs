//! Asking a media server to rescan the library: Navidrome (any Subsonic server) with
//! `startScan`, Jellyfin with `/Library/Refresh` (or `/Library/Media/Updated` for one path),
//! Plex with the refresh of the section whose folder holds the library. Each call goes
//! through the provider fetcher (the address guard, `Retry-After` pauses); secrets come from
//! the credential vault.

use std::path::Path;

use serde_json::Value;

use crate::config::{Config, MediaServerConfig};
use crate::failure::{JobError, code};
use crate::providers::Fetcher;
use musicd_media::request::{Answer, Request};

/// The media servers musicd knows, by name.
pub const SERVERS: &[&str] = &["navidrome", "jellyfin", "plex"];

/// The stored credentials each server needs.
pub fn credentials_of(name: &str) -> &'static [&'static str] {
    match name {
        "navidrome" => &["username", "password"],
        "jellyfin" => &["api_key"],
        "plex" => &["token"],
        _ => &[],
    }
}

/// Largest answer read.
const MAX_ANSWER: u64 = 1024 * 1024;

/// Asks server `name` to rescan; returns what it said.
pub async fn rescan(
    fetcher: &Fetcher,
    config: &Config,
    name: &str,
    server: &MediaServerConfig,
) -> Result<String, JobError> {
    let base = server.url.trim_end_matches('/');
    let library = if server.library_path.is_empty() {
        std::path::absolute(&config.library_dir)
            .unwrap_or_else(|_| config.library_dir.clone())
            .display()
            .to_string()
    } else {
        server.library_path.clone()
    };
    match name {
        "navidrome" => navidrome(fetcher, base).await,
        "jellyfin" => jellyfin(fetcher, base, server, &library).await,
        "plex" => plex(fetcher, base, &library).await,
        other => Err(JobError::permanent(
            code::VALIDATION_ERROR,
            format!("no media server called `{other}`"),
        )),
    }
}

fn refused(label: &str, a: &Answer, what: &str) -> JobError {
    let c = if matches!(a.status, 401 | 403) {
        code::CREDENTIALS_REJECTED
    } else {
        code::UPSTREAM_ERROR
    };
    JobError::permanent(c, format!("{label} answered HTTP {} ({what})", a.status))
}

/// Subsonic's `startScan`, posted as a form (OpenSubsonic `formPost`) so the token is not in
/// a URL, signed with the salted MD5 token of the API's authentication.
async fn navidrome(f: &Fetcher, base: &str) -> Result<String, JobError> {
    use md5::Digest;
    let user = f.credential("navidrome", "username").await?;
    let password = f.credential("navidrome", "password").await?;
    let salt = hex::encode(rand::random::<[u8; 8]>());
    let token = hex::encode(md5::Md5::digest(format!("{password}{salt}").as_bytes()));
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("u", &user)
        .append_pair("t", &token)
        .append_pair("s", &salt)
        .append_pair("v", "1.16.1")
        .append_pair("c", "musicd")
        .append_pair("f", "json")
        .finish();
    let req = Request {
        method: Some(reqwest::Method::POST),
        url: format!("{base}/rest/startScan"),
        body: Some((
            "application/x-www-form-urlencoded".into(),
            form.into_bytes(),
        )),
        ..Request::default()
    };
    let a = f.api("navidrome", "Navidrome", req, MAX_ANSWER).await?;
    if a.status != 200 {
        return Err(refused("Navidrome", &a, "startScan"));
    }
    let v: Value = crate::providers::parse_json("Navidrome", &a.bytes)?;
    let r = &v["subsonic-response"];
    if r["status"] == "ok" {
        let count = r.pointer("/scanStatus/count").and_then(Value::as_i64);
        Ok(match count {
            Some(n) => format!("scan started ({n} files known)"),
            None => "scan started".into(),
        })
    } else {
        let code_no = r
            .pointer("/error/code")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let msg = r
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        let c = if matches!(code_no, 40 | 41 | 44) {
            code::CREDENTIALS_REJECTED
        } else {
            code::UPSTREAM_ERROR
        };
        Err(JobError::permanent(
            c,
            format!("Navidrome refused startScan: {msg} (error {code_no})"),
        ))
    }
}

/// Jellyfin: the whole library (`/Library/Refresh`), or, when `library_path` names the folder
/// as Jellyfin sees it, only that folder (`/Library/Media/Updated`).
async fn jellyfin(
    f: &Fetcher,
    base: &str,
    server: &MediaServerConfig,
    library: &str,
) -> Result<String, JobError> {
    let key = f.credential("jellyfin", "api_key").await?;
    let auth = (
        "Authorization".to_string(),
        format!("MediaBrowser Token=\"{key}\""),
    );
    let (url, body, what) = if server.library_path.is_empty() {
        (format!("{base}/Library/Refresh"), None, "library refresh")
    } else {
        let body =
            serde_json::json!({ "Updates": [{ "Path": library, "UpdateType": "Modified" }] });
        (
            format!("{base}/Library/Media/Updated"),
            Some((
                "application/json".to_string(),
                body.to_string().into_bytes(),
            )),
            "media updated",
        )
    };
    let req = Request {
        method: Some(reqwest::Method::POST),
        url,
        headers: vec![auth],
        body,
        ..Request::default()
    };
    let a = f.api("jellyfin", "Jellyfin", req, MAX_ANSWER).await?;
    if (200..300).contains(&a.status) {
        Ok(format!("{what} started"))
    } else {
        Err(refused("Jellyfin", &a, what))
    }
}

/// Plex: finds the music section whose folder holds `library`, then refreshes that folder.
async fn plex(f: &Fetcher, base: &str, library: &str) -> Result<String, JobError> {
    let token = f.credential("plex", "token").await?;
    let headers = vec![
        ("X-Plex-Token".to_string(), token),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    let req = Request {
        url: format!("{base}/library/sections"),
        headers: headers.clone(),
        ..Request::default()
    };
    let a = f.api("plex", "Plex", req, MAX_ANSWER).await?;
    if a.status != 200 {
        return Err(refused("Plex", &a, "library sections"));
    }
    let v: Value = crate::providers::parse_json("Plex", &a.bytes)?;
    let dirs = v
        .pointer("/MediaContainer/Directory")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let lib = Path::new(library);
    let section = dirs.iter().find_map(|d| {
        let key = d["key"].as_str()?;
        let title = d["title"].as_str().unwrap_or(key);
        d["Location"].as_array()?.iter().find_map(|l| {
            let p = l["path"].as_str()?;
            (lib.starts_with(p) || Path::new(p).starts_with(lib))
                .then(|| (key.to_string(), title.to_string()))
        })
    });
    let Some((key, title)) = section else {
        return Err(JobError::permanent(
            code::NOT_FOUND,
            format!(
                "no Plex library section holds {library}; set integrations.plex.library_path to the folder as Plex sees it"
            ),
        ));
    };
    let path: String = form_urlencoded::byte_serialize(library.as_bytes()).collect();
    let req = Request {
        url: format!("{base}/library/sections/{key}/refresh?path={path}"),
        headers,
        ..Request::default()
    };
    let a = f.api("plex", "Plex", req, MAX_ANSWER).await?;
    if a.status == 200 {
        Ok(format!("refresh of section “{title}” started"))
    } else {
        Err(refused("Plex", &a, "section refresh"))
    }
}
