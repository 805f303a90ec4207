//! The client verbs' command-line arguments.

use super::*;

/// Where the daemon is and the key to send it.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Daemon URL, e.g. http://127.0.0.1:7171 [default: `[client] url`, else http://<listen>]
    #[arg(long = "url", env = "MUSICD_URL", value_name = "URL")]
    pub(super) daemon_url: Option<String>,
    /// API key, sent as `X-API-Key` [default: `[client] api_key`]
    #[arg(
        long,
        env = "MUSICD_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(super) api_key: Option<String>,
}

/// `musicd login`: sign in once and keep a key for this machine.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Daemon URL, e.g. http://127.0.0.1:7171 [default: `[client] url`, else http://<listen>]
    #[arg(long = "url", env = "MUSICD_URL", value_name = "URL")]
    pub(super) daemon_url: Option<String>,
    /// User name [default: asked]
    #[arg(long)]
    pub(super) user: Option<String>,
}

/// `musicd add`: ask the daemon to download something.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to download: a Spotify, Deezer, MusicBrainz or Jamendo link, a feed, a page or a file.
    #[arg(value_name = "URL")]
    pub(super) source: String,
    /// Output format: copy, mp3, opus, flac, vorbis or wav [default: the daemon's `[media] format`]
    #[arg(long)]
    pub(super) format: Option<String>,
    /// low, medium, high or lossless [default: the daemon's `[media] quality`]
    #[arg(long)]
    pub(super) quality: Option<String>,
    /// Library layout for this request (syntax in docs/MEDIA.md).
    #[arg(long)]
    pub(super) path_template: Option<String>,
    /// Show progress until the download ends; the exit status is 0 only if every track succeeded.
    #[arg(long)]
    pub(super) follow: bool,
    /// Only show what the link is and its tracks (which are already in the library).
    #[arg(long, conflicts_with = "follow")]
    pub(super) dry_run: bool,
    #[command(flatten)]
    pub(super) connect: ConnectArgs,
}

/// `musicd tasks`: list tasks, newest first.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only tasks with this status.
    #[arg(long, value_parser = STATUSES)]
    pub(super) status: Option<String>,
    /// Only tasks that have not finished.
    #[arg(long)]
    pub(super) active: bool,
    /// How many tasks to show (1–200).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub(super) limit: u32,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) connect: ConnectArgs,
}

/// `musicd task`: one task and its tracks.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Task id (as printed by `musicd add` and `musicd tasks`).
    pub(super) id: String,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    pub(super) json: bool,
    /// Show progress until the task ends, as `musicd add --follow` does.
    #[arg(long)]
    pub(super) follow: bool,
    #[command(flatten)]
    pub(super) connect: ConnectArgs,
}

/// `musicd watch …`.
#[derive(Debug, clap::Subcommand)]
pub enum WatchCommand {
    /// Watch a feed URL or a playlist page (or, with --provider and --kind, a provider's id).
    Add(WatchAddArgs),
    /// List your watches with their last and next check.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Check one watch now, or all of yours without an id.
    Check {
        /// Watch id (as printed by `musicd watch list`).
        id: Option<String>,
        /// Only show what would be added and removed.
        #[arg(long, requires = "id")]
        dry_run: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// `musicd watch add`.
#[derive(Debug, Args)]
pub struct WatchAddArgs {
    /// A feed URL or playlist page; with --provider, the provider's id.
    #[arg(value_name = "URL_OR_ID")]
    pub(super) source: String,
    /// A provider (e.g. jamendo) whose id SOURCE is.
    #[arg(long, requires = "kind")]
    pub(super) provider: Option<String>,
    /// With --provider: feed, playlist or artist.
    #[arg(long)]
    pub(super) kind: Option<String>,
    /// Cron expression (UTC) [default: the daemon's `[watch] default_schedule`]
    #[arg(long)]
    pub(super) schedule: Option<String>,
    /// Also download what is there now (otherwise only later additions download).
    #[arg(long)]
    pub(super) download_existing: bool,
    /// For artists: release types to keep (album, single, compilation, appears_on).
    #[arg(long, value_delimiter = ',')]
    pub(super) release_types: Vec<String>,
    /// When the source drops an item: keep, delete or flag.
    #[arg(long, value_parser = ["keep", "delete", "flag"])]
    pub(super) on_removed: Option<String>,
    /// Output format [default: the daemon's `[media] format`]
    #[arg(long)]
    pub(super) format: Option<String>,
    /// Quality preset [default: the daemon's `[media] quality`]
    #[arg(long)]
    pub(super) quality: Option<String>,
    #[command(flatten)]
    pub(super) connect: ConnectArgs,
}
