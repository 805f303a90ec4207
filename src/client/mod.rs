//! The client verbs `add`, `tasks` and `task`: they talk to a running daemon's `/api/v1` with
//! an API key, and `--follow` shows a download's progress from its event stream.
//!
//! Exit status: 0 on success, 1 when the daemon refused a request or a followed download did
//! not fully succeed, 2 for usage and connection problems, 130 when following is interrupted.

mod args;
mod daemon;
mod follow;
mod login;
mod render;
mod verbs;
mod watch;
mod wire;
pub use args::*;
use daemon::*;
use follow::*;
use login::*;
use render::*;
use verbs::*;
use watch::*;
use wire::*;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::Config;

/// Time limit for an ordinary request (not the event stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon sends a keep-alive every 15 s; this much silence means the stream is dead.
const STREAM_IDLE: Duration = Duration::from_secs(45);

/// How long to keep trying to reach the daemon again while following.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Runs `musicd watch …`.
pub async fn watch(config: &Config, command: WatchCommand) -> ExitCode {
    report(watch_inner(config, command).await)
}

/// Runs `musicd add`.
pub async fn add(config: &Config, args: AddArgs) -> ExitCode {
    report(add_inner(config, args).await)
}

/// Runs `musicd login`.
pub async fn login(config: &Config, args: LoginArgs) -> ExitCode {
    report(login_inner(config, args).await)
}

/// Runs `musicd logout`.
pub async fn logout(config: &Config, args: ConnectArgs) -> ExitCode {
    report(logout_inner(config, args).await)
}

/// Runs `musicd tasks`.
pub async fn tasks(config: &Config, args: TasksArgs) -> ExitCode {
    report(tasks_inner(config, args).await)
}

/// Runs `musicd task`.
pub async fn task(config: &Config, args: TaskArgs) -> ExitCode {
    report(task_inner(config, args).await)
}

/// Why a client verb failed.
#[derive(Debug)]
enum ClientError {
    /// Bad input or missing settings (exit 2).
    Usage(String),
    /// The daemon could not be reached, or what answered was not the daemon (exit 2).
    Connect(String),
    /// The daemon refused, with its error envelope (exit 1).
    Api {
        status: u16,
        code: String,
        message: String,
        details: Vec<Value>,
    },
}

fn report(result: Result<ExitCode, ClientError>) -> ExitCode {
    let e = match result {
        Ok(code) => return code,
        Err(e) => e,
    };
    match e {
        ClientError::Usage(msg) | ClientError::Connect(msg) => {
            eprintln!("musicd: {msg}");
            ExitCode::from(2)
        }
        ClientError::Api {
            status,
            code,
            message,
            details,
        } => {
            eprintln!("musicd: {code}: {message}");
            for d in &details {
                eprintln!("  {d}");
            }
            match status {
                401 => eprintln!("  (check the key given by --api-key or MUSICD_API_KEY)"),
                403 => eprintln!("  (the API key may lack the `write` scope)"),
                _ => {}
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_source() {
        assert_eq!(
            title_of(Some("https://example.com/a/My%20Song.mp3?x=1"), "id"),
            "My Song.mp3"
        );
        assert_eq!(title_of(Some("https://example.com/"), "id"), "example.com");
        assert_eq!(title_of(None, "id"), "id");
        assert_eq!(title_of(Some("/music/in/a.flac"), "id"), "a.flac");
    }

    #[test]
    fn root_url_comes_from_flag_config_or_listen() {
        let mut c = Config {
            listen: "0.0.0.0:7000".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(resolve_root(None, &c).unwrap(), "http://127.0.0.1:7000");
        c.client.url = "https://music.example.org/api/v1/".into();
        assert_eq!(resolve_root(None, &c).unwrap(), "https://music.example.org");
        assert_eq!(
            resolve_root(Some("localhost:9".into()), &c).unwrap(),
            "http://localhost:9"
        );
        assert!(resolve_root(Some("ftp://x".into()), &c).is_err());
    }
}
