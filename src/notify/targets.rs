//! Where a hook posts: a Standard Webhooks endpoint or a preset (ntfy, Gotify, Discord),
//! written as an `http(s)://` URL with a kind, or as an Apprise URL (`ntfy://`, `ntfys://`,
//! `gotify://`, `gotifys://`, `discord://`), and the request each sends.

use serde_json::json;
use url::Url;

use super::Message;
use crate::config::NotifyConfig;

/// The kinds of target.
pub const KINDS: &[&str] = &["webhook", "ntfy", "gotify", "discord"];

/// A parsed target: its kind, the URL kept in clear, and the secret kept sealed (a
/// preset's token; a Discord webhook's token; ntfy's `user:password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// Where it posts, without the secret.
    pub url: String,
    /// The secret part, when the target has one.
    pub secret: Option<String>,
}

fn kind_named(k: &str) -> Result<&'static str, String> {
    KINDS
        .iter()
        .find(|x| **x == k)
        .copied()
        .ok_or_else(|| format!("unknown kind `{k}` (one of {})", KINDS.join(", ")))
}

/// Reads a target. `kind` may be left out for an Apprise URL (it names it) and for a plain
/// webhook; `token` is a preset's token given apart from the URL.
pub fn parse(
    kind: Option<&str>,
    url: &str,
    token: Option<&str>,
    cfg: &NotifyConfig,
) -> Result<Target, String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    let given = kind.map(kind_named).transpose()?;
    let t = match u.scheme() {
        "http" | "https" => plain(given.unwrap_or("webhook"), u, token)?,
        "ntfy" | "ntfys" | "gotify" | "gotifys" | "discord" => {
            let t = apprise(&u, cfg)?;
            if given.is_some_and(|g| g != t.kind) {
                return Err(format!("a {}:// URL is a {} target", u.scheme(), t.kind));
            }
            Target {
                secret: token.map(str::to_string).or(t.secret),
                ..t
            }
        }
        s => {
            return Err(format!(
                "unsupported scheme `{s}`: http(s), or ntfy, ntfys, gotify, gotifys, discord"
            ));
        }
    };
    if t.kind == "gotify" && t.secret.is_none() {
        return Err("a Gotify target needs its application token".into());
    }
    if t.kind == "discord" && t.secret.is_none() {
        return Err(
            "a Discord target needs the webhook's token (…/api/webhooks/{id}/{token})".into(),
        );
    }
    Ok(t)
}

fn plain(kind: &'static str, u: Url, token: Option<&str>) -> Result<Target, String> {
    if !u.username().is_empty() || u.password().is_some() {
        return Err("put credentials in `token`, not in the URL".into());
    }
    let token = token.map(str::to_string);
    match kind {
        "discord" => {
            // https://discord.com/api/webhooks/{id}/{token}: the token is the last segment.
            let segs: Vec<&str> = u.path_segments().map(Iterator::collect).unwrap_or_default();
            let at = segs.iter().position(|s| *s == "webhooks");
            match (at, token) {
                (Some(i), None) if segs.len() == i + 3 => {
                    let mut base = u.clone();
                    base.set_path(&segs[..i + 2].join("/"));
                    base.set_query(None);
                    Ok(Target {
                        kind,
                        url: base.to_string(),
                        secret: Some(segs[i + 2].to_string()),
                    })
                }
                (Some(i), Some(t)) if segs.len() == i + 2 => Ok(Target {
                    kind,
                    url: u.to_string(),
                    secret: Some(t),
                }),
                _ => Err("a Discord URL is …/api/webhooks/{id}/{token}".into()),
            }
        }
        "ntfy" => {
            if u.path().trim_matches('/').is_empty() {
                return Err("an ntfy URL names its topic: https://ntfy.sh/{topic}".into());
            }
            Ok(Target {
                kind,
                url: u.to_string(),
                secret: token,
            })
        }
        _ => Ok(Target {
            kind,
            url: u.to_string(),
            secret: token,
        }),
    }
}

fn apprise(u: &Url, cfg: &NotifyConfig) -> Result<Target, String> {
    let secure = u.scheme().ends_with('s') && u.scheme() != "discord";
    let http = if secure { "https" } else { "http" };
    let host = u.host_str().unwrap_or_default();
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let segs: Vec<String> = u
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let user = percent_encoding::percent_decode_str(u.username())
        .decode_utf8_lossy()
        .to_string();
    let pass = u.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .to_string()
    });
    match u.scheme() {
        "ntfy" | "ntfys" => {
            // ntfy://{topic} (the default server), ntfy://[{user}:{password}|{token}@]{host}/{topic}
            let url = if segs.is_empty() {
                format!("{}/{host}", cfg.ntfy_url.trim_end_matches('/'))
            } else {
                format!("{http}://{host}{port}/{}", segs.join("/"))
            };
            let secret = match (user.is_empty(), pass) {
                (true, _) => None,
                (false, Some(p)) => Some(format!("{user}:{p}")),
                (false, None) => Some(user),
            };
            Ok(Target {
                kind: "ntfy",
                url,
                secret,
            })
        }
        "gotify" | "gotifys" => {
            // gotify://{host}[:{port}][/{path}]/{token}
            let Some((token, path)) = segs.split_last() else {
                return Err("a Gotify URL is gotify://{host}/{token}".into());
            };
            let path = if path.is_empty() {
                String::new()
            } else {
                format!("/{}", path.join("/"))
            };
            Ok(Target {
                kind: "gotify",
                url: format!("{http}://{host}{port}{path}"),
                secret: Some(token.clone()),
            })
        }
        _ => {
            // discord://[{user}@]{webhook_id}/{webhook_token}
            let [token] = segs.as_slice() else {
                return Err("a Discord URL is discord://{webhook_id}/{webhook_token}".into());
            };
            Ok(Target {
                kind: "discord",
                url: format!(
                    "{}/api/webhooks/{host}",
                    cfg.discord_url.trim_end_matches('/')
                ),
                secret: Some(token.clone()),
            })
        }
    }
}

/// A request to send: where, its headers and its JSON body.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Target URL.
    pub url: String,
    /// Headers besides `Content-Type: application/json`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The request a preset sends for `m`, in each service's documented format: ntfy's JSON
/// publish, Gotify's `POST /message`, Discord's execute-webhook with one embed.
pub fn preset(
    kind: &str,
    url: &str,
    secret: Option<&str>,
    m: &Message,
) -> Result<Outgoing, String> {
    match kind {
        "ntfy" => {
            // JSON publishing goes to the server's root with the topic in the body.
            let mut u = Url::parse(url).map_err(|e| e.to_string())?;
            let path = u.path().trim_matches('/').to_string();
            let (prefix, topic) = match path.rsplit_once('/') {
                Some((p, t)) => (format!("/{p}"), t.to_string()),
                None => (String::new(), path),
            };
            u.set_path(&prefix);
            let mut headers = Vec::new();
            if let Some(s) = secret {
                headers.push(("Authorization".into(), ntfy_auth(s)));
            }
            let mut body = json!({
                "topic": topic,
                "title": m.title,
                "message": m.body,
                "priority": if m.bad { 4 } else { 3 },
                "tags": [if m.bad { "warning" } else { "musical_note" }],
            });
            if let Some(link) = &m.link {
                body["click"] = json!(link);
            }
            Ok(Outgoing {
                url: u.to_string().trim_end_matches('/').to_string(),
                headers,
                body: body.to_string().into_bytes(),
            })
        }
        "gotify" => {
            let mut body = json!({
                "title": m.title,
                "message": m.body,
                "priority": if m.bad { 8 } else { 5 },
            });
            if let Some(link) = &m.link {
                body["extras"] = json!({ "client::notification": { "click": { "url": link } } });
            }
            Ok(Outgoing {
                url: format!("{}/message", url.trim_end_matches('/')),
                headers: vec![("X-Gotify-Key".into(), secret.unwrap_or_default().into())],
                body: body.to_string().into_bytes(),
            })
        }
        "discord" => {
            let mut embed = json!({
                "title": m.title,
                "description": m.body,
                "color": if m.bad { 0xd0_3b_3b } else { 0x2e_a0_43 },
            });
            if let Some(link) = &m.link {
                embed["url"] = json!(link);
            }
            let body = json!({ "username": "musicd", "embeds": [embed] });
            Ok(Outgoing {
                url: format!(
                    "{}/{}",
                    url.trim_end_matches('/'),
                    secret.unwrap_or_default()
                ),
                headers: Vec::new(),
                body: body.to_string().into_bytes(),
            })
        }
        k => Err(format!("`{k}` is not a preset")),
    }
}

fn ntfy_auth(secret: &str) -> String {
    use base64::Engine;
    match secret.split_once(':') {
        Some(_) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(secret)
        ),
        None => format!("Bearer {secret}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NotifyConfig {
        NotifyConfig::default()
    }

    #[test]
    fn apprise_urls_name_their_targets() {
        let t = parse(None, "ntfy://alerts", None, &cfg()).unwrap();
        assert_eq!(
            (t.kind, t.url.as_str(), t.secret),
            ("ntfy", "https://ntfy.sh/alerts", None)
        );
        let t = parse(None, "ntfys://tk_abc@ntfy.example.com/music", None, &cfg()).unwrap();
        assert_eq!(t.url, "https://ntfy.example.com/music");
        assert_eq!(t.secret.as_deref(), Some("tk_abc"));
        let t = parse(None, "ntfy://me:pa%40ss@127.0.0.1:8080/music", None, &cfg()).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:8080/music");
        assert_eq!(t.secret.as_deref(), Some("me:pa@ss"));
        let t = parse(None, "gotifys://push.example.com/sub/AbCd", None, &cfg()).unwrap();
        assert_eq!(
            (t.kind, t.url.as_str()),
            ("gotify", "https://push.example.com/sub")
        );
        assert_eq!(t.secret.as_deref(), Some("AbCd"));
        let t = parse(None, "discord://12345/tok-en", None, &cfg()).unwrap();
        assert_eq!(t.url, "https://discord.com/api/webhooks/12345");
        assert_eq!(t.secret.as_deref(), Some("tok-en"));
        assert!(parse(Some("gotify"), "ntfy://x", None, &cfg()).is_err());
        assert!(parse(None, "gotify://host", None, &cfg()).is_err());
    }

    #[test]
    fn a_discord_https_url_keeps_its_token_apart() {
        let t = parse(
            Some("discord"),
            "https://discord.com/api/webhooks/1/secret",
            None,
            &cfg(),
        )
        .unwrap();
        assert_eq!(t.url, "https://discord.com/api/webhooks/1");
        assert_eq!(t.secret.as_deref(), Some("secret"));
    }

    #[test]
    fn ntfy_publishes_json_to_the_server_root() {
        let m = Message {
            title: "T".into(),
            body: "B".into(),
            link: Some("https://m/#/tasks/1".into()),
            bad: false,
        };
        let o = preset("ntfy", "http://127.0.0.1:9/music", Some("tk_x"), &m).unwrap();
        assert_eq!(o.url, "http://127.0.0.1:9");
        let body: serde_json::Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(body["topic"], "music");
        assert_eq!(body["click"], "https://m/#/tasks/1");
        assert_eq!(o.headers[0].1, "Bearer tk_x");
    }
}
