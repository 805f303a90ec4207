//! The binary's command line: configuration errors name the key, secrets stay hidden,
//! accounts are created from the terminal, and the README's first command starts a daemon.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::*;

fn musicd(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_musicd"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("MUSICD_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn config_errors_name_the_key() {
    let dirs = Dirs::new();
    let dir = dirs.tmp.path();
    let out = musicd(
        dir,
        &["config", "print"],
        &[("MUSICD_LISTEN", "not-an-address")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("listen"), "{err}");

    std::fs::write(
        dir.join("bad.toml"),
        "listen = \"127.0.0.1:1\"\nlibary_dir = \"typo\"\n",
    )
    .unwrap();
    let out = musicd(dir, &["--config", "bad.toml", "config", "print"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("libary_dir"), "{err}");

    std::fs::write(dir.join("bad2.toml"), "[queue]\nmax_attempts = \"many\"\n").unwrap();
    let out = musicd(dir, &["--config", "bad2.toml", "config", "print"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_attempts"), "{err}");

    let out = musicd(
        dir,
        &["config", "print"],
        &[("MUSICD_AUTH", "off"), ("MUSICD_LISTEN", "0.0.0.0:7171")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth"));
}

#[test]
fn config_print_layers_and_redacts() {
    let dirs = Dirs::new();
    let dir = dirs.tmp.path();
    std::fs::write(
        dir.join("m.toml"),
        "library_dir = \"/srv/music\"\n[workers]\nio_concurrency = 3\n",
    )
    .unwrap();
    let out = musicd(
        dir,
        &[
            "--config",
            "m.toml",
            "--data-dir",
            "/var/lib/x",
            "config",
            "print",
        ],
        &[
            (
                "MUSICD_JWT_SECRET",
                "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret",
            ),
            ("MUSICD_ADMIN_USER", "root"),
            ("MUSICD_ADMIN_PASSWORD", "123456789"),
            ("MUSICD_WORKERS__IO_CONCURRENCY", "4"),
            ("MUSICD_REDIS_URL", "redis://:pw@127.0.0.1:6379"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("library_dir = \"/srv/music\""),
        "file layer: {text}"
    );
    assert!(
        text.contains("io_concurrency = 4"),
        "env beats file: {text}"
    );
    assert!(
        text.contains("data_dir = \"/var/lib/x\""),
        "flag layer: {text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains("123456789"), "{text}");
    assert!(!text.contains(":pw@"), "{text}");
}

#[test]
fn user_create_from_stdin() {
    let dirs = Dirs::new();
    let dir = dirs.tmp.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_musicd"))
        .args(["user", "create", "--admin", "--password-stdin", "root"])
        .current_dir(dir)
        .env("MUSICD_DATA_DIR", dirs.data())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"root-password-1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin root"));
}

/// What the README's first command does: `musicd serve` in a fresh directory, no config.
#[tokio::test]
async fn serve_with_no_config_file() {
    let dirs = Dirs::new();
    let port = free_port();
    let env = [
        ("MUSICD_LISTEN", format!("127.0.0.1:{port}")),
        ("MUSICD_ADMIN_USER", ADMIN.to_string()),
        ("MUSICD_ADMIN_PASSWORD", ADMIN_PW.to_string()),
    ];
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "serve.log");
    d.wait_ready().await;
    let client = reqwest::Client::new();
    let health: Value = client
        .get(format!("{}/api/v1/health", d.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["success"], json!(true));
    let token = login(&client, &d.base, ADMIN, ADMIN_PW).await;
    let me: Value = client
        .get(format!("{}/api/v1/auth/me", d.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["user"]["role"], json!("admin"));
    // Embedded defaults under the working directory; the generated secret is private.
    let data = dirs.tmp.path().join("data");
    assert!(data.join("musicd.db").exists());
    assert!(data.join("queue.db").exists());
    assert!(dirs.tmp.path().join("library").is_dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("jwt_secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(d.terminate().success());
}

/// With no admin configured, the first start creates one with a random password in a
/// private file: never a default password.
#[tokio::test]
async fn first_start_creates_a_random_admin() {
    let dirs = Dirs::new();
    let port = free_port();
    let env = [("MUSICD_LISTEN", format!("127.0.0.1:{port}"))];
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "serve.log");
    d.wait_ready().await;
    let file = dirs.tmp.path().join("data/initial-admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(password.len() >= 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !d.log_text().contains(&password),
        "the password is not logged"
    );
    let client = reqwest::Client::new();
    login(&client, &d.base, "admin", &password).await;
    assert!(d.terminate().success());
    // A second start keeps the account and does not write a new password.
    std::fs::remove_file(&file).unwrap();
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "serve2.log");
    d.wait_ready().await;
    assert!(!file.exists());
    login(&client, &d.base, "admin", &password).await;
}

/// `musicd import`: good files land in the library (checked by ffprobe), a bad one is named
/// with its reason and makes the exit status non-zero.
#[test]
fn import_places_files_and_reports_failures() {
    let dirs = Dirs::new();
    let dir = dirs.tmp.path();
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_tone(&input.join("tone.flac"));
    std::fs::write(input.join("notes.mp3"), b"this is not audio").unwrap();
    let lib = dir.join("lib");
    let placed = import_places_the_tone_and_names_the_bad_file(dir, &lib);
    // The import indexed what it placed: a scan finds it already known.
    let scan = musicd(dir, &["scan", lib.to_str().unwrap()], &[]);
    let scanned = String::from_utf8_lossy(&scan.stdout);
    assert!(scan.status.success(), "{scanned}");
    assert!(scanned.contains("0 indexed, 1 unchanged"), "{scanned}");
    placed_file_is_the_tone(&placed);
    // Importing again skips what is already there.
    let out = import_mp3(dir, &lib, "in/tone.flac");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 imported, 1 skipped"));
    // Bad options are refused before any work.
    let out = musicd(
        dir,
        &["import", "--format", "mp3", "--vbr", "12", "in"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Writes a two-second stereo 440 Hz FLAC tagged Tone / Tester / Tones.
fn write_tone(path: &std::path::Path) {
    let ok = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-ac",
            "2",
        ])
        .args([
            "-metadata",
            "title=Tone",
            "-metadata",
            "artist=Tester",
            "-metadata",
            "album=Tones",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg is installed by .ci/setup-test");
    assert!(ok.success());
}

/// `musicd import --format mp3 --vbr 2 --library <lib> <what>` in `dir`.
fn import_mp3(dir: &std::path::Path, lib: &std::path::Path, what: &str) -> std::process::Output {
    musicd(
        dir,
        &[
            "import",
            "--format",
            "mp3",
            "--vbr",
            "2",
            "--library",
            lib.to_str().unwrap(),
            what,
        ],
        &[],
    )
}

/// Importing `in/` places the tone as one MP3, names the bad file with its reason and exits
/// with 1. The placed file.
fn import_places_the_tone_and_names_the_bad_file(
    dir: &std::path::Path,
    lib: &std::path::Path,
) -> std::path::PathBuf {
    let out = import_mp3(dir, lib, "in");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failure makes the exit status non-zero"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("1 imported, 0 skipped, 1 failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("notes.mp3") && stderr.contains("unsupported_media_type"),
        "{stderr}"
    );
    let placed: Vec<_> = walk(lib)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp3"))
        .collect();
    assert_eq!(placed.len(), 1);
    placed[0].clone()
}

/// ffprobe reads the placed file as two seconds long, titled Tone.
fn placed_file_is_the_tone(placed: &std::path::Path) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:format_tags=title",
            "-of",
            "json",
        ])
        .arg(placed)
        .output()
        .unwrap();
    assert!(probe.status.success());
    let v: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let dur: f64 = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((dur - 2.0).abs() < 0.06, "duration {dur}");
    assert_eq!(v["format"]["tags"]["title"], json!("Tone"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `musicd add` without a key stops before contacting the daemon and says how to get one.
#[test]
fn add_without_key_explains_how_to_get_one() {
    let dirs = Dirs::new();
    let port = free_port();
    let out = musicd(
        dirs.tmp.path(),
        &["add", "http://example.com/x.mp3"],
        &[("MUSICD_URL", &format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing key is a usage problem"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MUSICD_API_KEY"), "{err}");
    assert!(err.contains("/api/v1/api-keys"), "{err}");
}
