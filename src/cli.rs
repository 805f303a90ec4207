//! The command line: `serve`, `worker`, `migrate`, `import`, `user create|passwd`, `config print`,
//! and the client verbs `add`, `tasks` and `task` (in `client`) that talk to a running daemon.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::app::{Application, Role, open_db};
use crate::config::{Config, LogFormat, Overrides};
use crate::db::users;

/// Self-hosted music download and media-processing daemon.
#[derive(Debug, Parser)]
#[command(name = "musicd", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Configuration file (default: config/musicd.toml when it exists).
    #[arg(long, global = true, env = "MUSICD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (MUSICD_LISTEN).
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// State directory (MUSICD_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Library directory (MUSICD_LIBRARY_DIR).
    #[arg(long, global = true)]
    library_dir: Option<PathBuf>,
    /// sqlite:// or postgres:// URL (MUSICD_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// redis:// URL for the queue (MUSICD_REDIS_URL).
    #[arg(long, global = true)]
    redis_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, the workers and the scheduler in one process (the embedded default).
    Serve,
    /// Run workers only, taking jobs from the shared queue (needs MUSICD_REDIS_URL to scale out).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Run local files through the media pipeline into the library.
    Import(crate::import::ImportArgs),
    /// Index an existing collection (default: the library) without changing it, so dedup
    /// knows what you have; files gone since the last scan are forgotten.
    Scan {
        /// Folder to scan [default: the library].
        dir: Option<PathBuf>,
    },
    /// Sign in to a running daemon once: asks for the user name and password and keeps an API
    /// key for this machine in ~/.config/musicd/client.toml (mode 0600).
    Login(crate::client::LoginArgs),
    /// Revoke the key `musicd login` kept, and forget it.
    Logout(crate::client::ConnectArgs),
    /// Ask a running daemon to download any link: Spotify, Deezer, MusicBrainz, Jamendo, a
    /// feed, a page or a file (needs `musicd login` or an API key).
    Add(crate::client::AddArgs),
    /// List a running daemon's tasks, newest first.
    Tasks(crate::client::TasksArgs),
    /// Show one task and its tracks, or follow it with --follow.
    Task(crate::client::TaskArgs),
    /// Keep a feed, playlist or artist in sync on a schedule (a running daemon's watches).
    Watch {
        #[command(subcommand)]
        command: crate::client::WatchCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from stdin or prompted for.
    Create {
        /// Login name.
        username: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (on the daemon's database); its logins are signed out.
    Passwd {
        /// Login name.
        username: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Print,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = &cli.global;
    let overrides = Overrides {
        listen: g.listen,
        data_dir: g.data_dir.clone(),
        library_dir: g.library_dir.clone(),
        database_url: g.database_url.clone(),
        redis_url: g.redis_url.clone(),
    };
    let config = match Config::load(g.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("musicd: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    if let Command::Import(args) = cli.command {
        return match crate::import::run(&config, args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("musicd: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("musicd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("musicd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = std::env::var("MUSICD_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => daemon(config, Role::Serve).await,
        Command::Worker => daemon(config, Role::Worker).await,
        Command::Import(_) => unreachable!("handled before the runtime starts"),
        Command::Add(args) => Ok(crate::client::add(&config, args).await),
        Command::Login(args) => Ok(crate::client::login(&config, args).await),
        Command::Logout(args) => Ok(crate::client::logout(&config, args).await),
        Command::Tasks(args) => Ok(crate::client::tasks(&config, args).await),
        Command::Task(args) => Ok(crate::client::task(&config, args).await),
        Command::Watch { command } => Ok(crate::client::watch(&config, command).await),
        Command::Migrate => {
            open_db(&config).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan { dir } => {
            let db = open_db(&config).await?;
            let dir = dir.unwrap_or_else(|| config.library_dir.clone());
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = crate::library::scan(&db, &dir, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
            bar.finish_and_clear();
            for (file, why) in &report.failed {
                println!("not audio  {file}: {why}");
            }
            println!(
                "{} indexed, {} unchanged, {} gone, {} not readable",
                report.indexed,
                report.unchanged,
                report.removed,
                report.failed.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    admin,
                    password_stdin,
                },
        } => {
            crate::api::auth::validate_username(&username)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let password = read_password(password_stdin)?;
            crate::api::auth::validate_password(&password)
                .map_err(|e| anyhow::anyhow!("password {}", e.message))?;
            let db = open_db(&config).await?;
            let hash = crate::auth::hash_password(&password)?;
            let role = if admin { "admin" } else { "user" };
            match users::create(&db, &username, &hash, role).await? {
                Some(u) => {
                    println!("created {role} {} ({})", u.username, u.id);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("musicd: user {username} already exists");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::User {
            command:
                UserCommand::Passwd {
                    username,
                    password_stdin,
                },
        } => {
            let db = open_db(&config).await?;
            let Some((user, _)) = users::credentials(&db, &username).await? else {
                eprintln!("musicd: no user {username}");
                return Ok(ExitCode::FAILURE);
            };
            let password = read_password(password_stdin)?;
            crate::api::auth::validate_password(&password)
                .map_err(|e| anyhow::anyhow!("password {}", e.message))?;
            let hash = crate::auth::hash_password(&password)?;
            users::set_password(&db, &user.id, &hash).await?;
            crate::db::tokens::revoke_user(&db, &user.id).await?;
            println!(
                "password of {} changed; its logins were signed out",
                user.username
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Print,
        } => {
            print!("{}", config.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = rpassword::prompt_password("password: ")?;
    let second = rpassword::prompt_password("again: ")?;
    anyhow::ensure!(first == second, "the passwords differ");
    Ok(first)
}

async fn daemon(config: Config, role: Role) -> anyhow::Result<ExitCode> {
    let app = Application::build(config, role).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn watch_signals(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot watch SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
