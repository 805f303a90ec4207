//! The daemon client: where the daemon is, the key it is sent, one HTTP request with the
//! envelope unwrapped into a value or a [`ClientError`] that says what to do.

use super::*;

/// How to get a key, for when none is configured.
pub(super) fn no_key_help(root: &str) -> String {
    format!(
        "no API key: run `musicd login --url {root}`, or pass --api-key, set MUSICD_API_KEY, or set `api_key` in the [client] section of the config file.
To create a key, log in and ask for one with the `write` scope (it is shown only once):
  TOKEN=$(curl -s {root}/api/v1/auth/login -H 'content-type: application/json' \\
      -d '{{\"username\":\"USER\",\"password\":\"PASSWORD\"}}' | jq -r .data.access_token)
  curl -s {root}/api/v1/api-keys -H \"authorization: Bearer $TOKEN\" \\
      -H 'content-type: application/json' -d '{{\"name\":\"cli\",\"scopes\":[\"read\",\"write\"]}}' | jq -r .data.key
  export MUSICD_API_KEY=<that key>"
    )
}

/// The daemon's address when it listens on all interfaces: the same port on loopback.
pub(super) fn local_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The daemon's root URL (without `/api/v1`): the flag or environment, then `[client] url`,
/// then `http://<listen>`.
pub(super) fn resolve_root(flag: Option<String>, config: &Config) -> Result<String, ClientError> {
    let raw = flag
        .filter(|s| !s.trim().is_empty())
        .or_else(|| Some(config.client.url.clone()).filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| format!("http://{}", local_addr(config.listen)));
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| ClientError::Usage(format!("daemon URL `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Usage(format!(
            "daemon URL `{raw}`: must start with http:// or https://"
        )));
    }
    let root = url.as_str().trim_end_matches('/');
    Ok(root
        .strip_suffix("/api/v1")
        .unwrap_or(root)
        .trim_end_matches('/')
        .to_string())
}

/// A daemon's API, with the key to send.
pub(super) struct Daemon {
    pub(super) http: reqwest::Client,
    pub(super) root: String,
    pub(super) key: String,
}

impl Daemon {
    pub(super) fn new(config: &Config, args: ConnectArgs) -> Result<Self, ClientError> {
        // After flags, variables and `[client]`: what `musicd login` kept.
        let kept = super::login::saved();
        let url = args.daemon_url.or_else(|| {
            kept.as_ref()
                .filter(|_| config.client.url.trim().is_empty())
                .map(|k| k.url.clone())
        });
        let root = resolve_root(url, config)?;
        let key = args
            .api_key
            .filter(|k| !k.trim().is_empty())
            .or_else(|| Some(config.client.api_key.clone()).filter(|k| !k.trim().is_empty()))
            .or_else(|| kept.map(|k| k.api_key).filter(|k| !k.is_empty()))
            .ok_or_else(|| ClientError::Usage(no_key_help(&root)))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("musicd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            http,
            root,
            key: key.trim().to_string(),
        })
    }

    /// `<root>/api/v1/<segments…>`, each segment escaped.
    pub(super) fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = url::Url::parse(&format!("{}/api/v1", self.root)).expect("checked root");
        url.path_segments_mut()
            .expect("http URLs have paths")
            .extend(segments);
        url
    }

    pub(super) fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        if e.is_timeout() {
            return ClientError::Connect(format!(
                "the daemon at {} did not answer in time",
                self.root
            ));
        }
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Connect(format!(
            "cannot reach the daemon at {} ({msg}); is it running? Set MUSICD_URL or --url",
            self.root
        ))
    }

    /// Sends a request and reads the envelope's `data`.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        // `musicd login` has no key yet: it signs in with a token.
        let req = if self.key.is_empty() {
            req
        } else {
            req.header("x-api-key", &self.key)
        };
        let resp = req
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let url = resp.url().clone();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| not_the_api(status, &url, &body))?;
        if !status.is_success() || value.get("success") == Some(&Value::Bool(false)) {
            return Err(api_error(status, &url, &value, &body));
        }
        let data = value.get("data").cloned().unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| {
            ClientError::Connect(format!(
                "unexpected answer from {url}: {e} (is this a musicd of the same version?)"
            ))
        })
    }

    pub(super) async fn get_task(&self, id: &str) -> Result<Task, ClientError> {
        self.call(self.http.get(self.url(&["tasks", id]))).await
    }

    /// Every child of a parent, in creation order, following the cursor.
    pub(super) async fn children(&self, id: &str) -> Result<Vec<Task>, ClientError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(self.url(&["tasks", id, "children"]))
                .query(&[("limit", "200")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: Page<Task> = self.call(req).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                _ => return Ok(all),
            }
        }
    }

    /// Opens the event stream of a task and its children, resuming after `last_id`.
    pub(super) async fn open_events(
        &self,
        task_id: &str,
        last_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(self.url(&["events"]))
            .query(&[("task_id", task_id)])
            .header("x-api-key", &self.key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let url = resp.url().clone();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        Err(match serde_json::from_slice::<Value>(&body) {
            Ok(v) => api_error(status, &url, &v, &body),
            Err(_) => not_the_api(status, &url, &body),
        })
    }
}

/// An answer that is not the API's JSON: a proxy's error page, another server.
pub(super) fn not_the_api(status: reqwest::StatusCode, url: &url::Url, body: &[u8]) -> ClientError {
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    ClientError::Connect(format!(
        "{url} answered HTTP {status} without the API's JSON: {}",
        text.trim()
    ))
}

pub(super) fn api_error(
    status: reqwest::StatusCode,
    url: &url::Url,
    v: &Value,
    body: &[u8],
) -> ClientError {
    let Some(err) = v.get("error") else {
        return not_the_api(status, url, body);
    };
    ClientError::Api {
        status: status.as_u16(),
        code: err["code"].as_str().unwrap_or("error").to_string(),
        message: err["message"].as_str().unwrap_or("").to_string(),
        details: err["details"].as_array().cloned().unwrap_or_default(),
    }
}
