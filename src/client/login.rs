//! `musicd login` and `musicd logout`: sign in once with a user name and password, create an
//! API key for this machine and keep it (with the daemon's URL) in the user's client file,
//! `$XDG_CONFIG_HOME/musicd/client.toml` or `~/.config/musicd/client.toml`, mode 0600; the
//! client verbs use it when no flag, variable or `[client]` setting names a key. `logout`
//! revokes that key and removes the file.

use std::io::{BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use super::*;

/// What `musicd login` keeps.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
pub(super) struct Saved {
    /// The daemon's root URL.
    pub(super) url: String,
    /// The API key.
    pub(super) api_key: String,
    /// Its id, to revoke it on logout.
    #[serde(default)]
    pub(super) api_key_id: String,
}

/// The user's client file.
pub(super) fn saved_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("musicd").join("client.toml"))
}

/// What `musicd login` saved, if anything.
pub(super) fn saved() -> Option<Saved> {
    let text = std::fs::read_to_string(saved_path()?).ok()?;
    toml::from_str(&text).ok()
}

fn save(s: &Saved) -> Result<PathBuf, ClientError> {
    let path = saved_path().ok_or_else(|| {
        ClientError::Usage(
            "no home directory to keep the key in (set HOME or XDG_CONFIG_HOME)".into(),
        )
    })?;
    let dir = path.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir)
        .map_err(|e| ClientError::Usage(format!("{}: {e}", dir.display())))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let text = toml::to_string(s).map_err(|e| ClientError::Usage(e.to_string()))?;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| ClientError::Usage(format!("{}: {e}", tmp.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Reads a line from standard input after a prompt on standard error.
fn ask(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Usage(format!("cannot read the answer: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub(super) async fn login_inner(config: &Config, args: LoginArgs) -> Result<ExitCode, ClientError> {
    let root = resolve_root(args.daemon_url, config)?;
    let user = match args.user {
        Some(u) => u,
        None => ask("user name: ")?,
    };
    // From a terminal the password is read without echo; piped, it is the next line.
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ").map_err(|e| ClientError::Usage(e.to_string()))?
    } else {
        ask("")?
    };
    if user.is_empty() || password.is_empty() {
        return Err(ClientError::Usage(
            "a user name and a password are needed".into(),
        ));
    }
    let mut daemon = Daemon {
        http: reqwest::Client::builder()
            .user_agent(concat!("musicd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot set up HTTP: {e}")))?,
        root: root.clone(),
        key: String::new(),
    };
    #[derive(Deserialize)]
    struct Login {
        access_token: String,
    }
    let login: Login = daemon
        .call(
            daemon
                .http
                .post(daemon.url(&["auth", "login"]))
                .json(&json!({"username": user, "password": password})),
        )
        .await?;
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "this machine".into());
    #[derive(Deserialize)]
    struct Stored {
        id: String,
    }
    #[derive(Deserialize)]
    struct Key {
        key: String,
        api_key: Stored,
    }
    let key: Key = daemon
        .call(
            daemon
                .http
                .post(daemon.url(&["api-keys"]))
                .bearer_auth(&login.access_token)
                .json(
                    &json!({"name": format!("musicd cli on {host}"), "scopes": ["read", "write"]}),
                ),
        )
        .await?;
    let path = save(&Saved {
        url: root.clone(),
        api_key: key.key.clone(),
        api_key_id: key.api_key.id,
    })?;
    daemon.key = key.key;
    println!(
        "signed in to {root} as {user}; the key for this machine is kept in {}",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn logout_inner(
    config: &Config,
    args: ConnectArgs,
) -> Result<ExitCode, ClientError> {
    let Some(s) = saved() else {
        println!("not signed in (no key kept by `musicd login`)");
        return Ok(ExitCode::SUCCESS);
    };
    let args = ConnectArgs {
        daemon_url: args.daemon_url.or(Some(s.url.clone())),
        api_key: Some(s.api_key.clone()),
    };
    let daemon = Daemon::new(config, args)?;
    if !s.api_key_id.is_empty() {
        let req = daemon.http.delete(daemon.url(&["api-keys", &s.api_key_id]));
        match daemon.call::<Value>(req).await {
            Ok(_)
            | Err(ClientError::Api {
                status: 401 | 404, ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(path) = saved_path() {
        let _ = std::fs::remove_file(path);
    }
    println!("signed out of {}; the key is revoked", s.url);
    Ok(ExitCode::SUCCESS)
}
