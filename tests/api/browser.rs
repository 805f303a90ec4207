//! Headless Chromium driven over WebDriver (fantoccini), by a chromedriver of its own on a
//! free port: what the web app's tests click, type and read, and where their screenshots go.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use fantoccini::elements::Element;
use serde_json::{Value, json};

use crate::kit::eventually;

/// How long a page gets to show what a test waits for.
pub const PAGE_WAIT: Duration = Duration::from_secs(30);

/// A browser with its own profile.
pub struct Browser {
    /// The WebDriver session.
    pub client: fantoccini::Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

/// Where the tests write screenshots: `target/web-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Starts chromedriver and opens a session (1280 × 900).
    pub async fn start() -> Self {
        let port = crate::helpers::free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver (bash .ci/setup-test installs it)");
        let profile = tempfile::tempdir().unwrap();
        let options = json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--autoplay-policy=no-user-gesture-required",
                     "--window-size=1280,900",
                     // A tall screen, so a whole page fits a screenshot.
                     "--screen-info={0,0 1600x4000}",
                     format!("--user-data-dir={}", profile.path().display())]
        });
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let client = eventually(
            Duration::from_secs(20),
            "chromedriver opens a session",
            || {
                let (caps, url) = (caps.clone(), url.clone());
                async move {
                    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                    fantoccini::ClientBuilder::new(connector)
                        .capabilities(caps)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await;
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens a page.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Ends the session (chromedriver closes Chromium), then the driver.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }

    /// Runs a script in the page; its return value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("run the script")
    }

    /// Waits until the script returns something truthy (not `null`, `false`, `""` or `0`),
    /// and returns that.
    pub async fn until(&self, what: &str, script: &str) -> Value {
        eventually(PAGE_WAIT, what, || async move {
            let v = self.client.execute(script, Vec::new()).await.ok()?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            truthy.then_some(v)
        })
        .await
    }

    /// Waits for an element.
    pub async fn find(&self, css: &str) -> Element {
        eventually(
            PAGE_WAIT,
            &format!("the page shows `{css}`"),
            || async move { self.client.find(Locator::Css(css)).await.ok() },
        )
        .await
    }

    /// Clicks an element once it is there.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces an input's text.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// An element's visible text.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// Waits until an element's text contains `want`.
    pub async fn until_text(&self, css: &str, want: &str) -> String {
        let script = format!(
            "const e = document.querySelector({css:?}); return e && e.innerText.includes({want:?}) ? e.innerText : null;"
        );
        self.until(&format!("`{css}` says {want:?}"), &script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Goes to a route of the app and waits until its page has rendered.
    pub async fn route(&self, base: &str, hash: &str) {
        let before = self.eval("return document.body.dataset.ready || '';").await;
        let before = before.as_str().unwrap_or("").to_string();
        let url = format!("{base}/{hash}");
        if self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .ok()
            .as_deref()
            == Some(&url)
        {
            self.client.refresh().await.expect("reload");
        } else {
            self.goto(&url).await;
        }
        let page = hash
            .trim_start_matches("#/")
            .split('/')
            .next()
            .unwrap_or("");
        let script = format!(
            "const b = document.body; return b.dataset.ready && b.dataset.ready !== {before:?} && b.dataset.page === {page:?} && !document.getElementById('main').hasAttribute('aria-busy');"
        );
        self.until(&format!("the {hash} page renders"), &script)
            .await;
    }

    /// Signs in through the page's form.
    pub async fn sign_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/#/login")).await;
        self.type_into("input[name=username]", user).await;
        self.type_into("input[name=password]", password).await;
        self.click("form.login button[type=submit]").await;
        self.until(
            "the app shows its menu after signing in",
            "return !document.querySelector('header.top').hidden && document.body.dataset.page !== 'login';",
        )
        .await;
    }

    /// Writes a PNG of the page at `width` px (the height follows the page, up to 3000 px)
    /// to `target/web-screenshots/<name>-<width>.png`.
    pub async fn screenshot(&self, name: &str, width: u32) {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("resize");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let height = self
            .eval("return Math.min(3000, Math.max(900, document.documentElement.scrollHeight));")
            .await
            .as_u64()
            .unwrap_or(900) as u32;
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
        // Let the layout settle at the new width before measuring and capturing.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(screenshot_dir().join(format!("{name}-{width}.png")), png).unwrap();
        self.client
            .set_window_size(1280, 900)
            .await
            .expect("resize");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
