//! Secret files in the data dir: generated once, readable only by their owner (0600).

use std::path::Path;

use rand::RngCore;

/// A random secret kept in `data_dir/<file>` (mode 0600), generated on first use.
pub fn load_or_create_secret_file(
    data_dir: &Path,
    file: &str,
    what: &str,
) -> anyhow::Result<String> {
    use std::io::Write;
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_string()),
        Ok(_) => anyhow::bail!(
            "{} is too short; delete it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut b = [0u8; 48];
    rand::rng().fill_bytes(&mut b);
    let secret = hex::encode(b);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
            tracing::info!("generated {what} in {}", path.display());
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_secret_file(data_dir, file, what)
        }
        Err(e) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
    }
}

/// Writes a file readable only by its owner (mode 0600), replacing any old one.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
