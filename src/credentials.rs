//! Provider credentials at rest: sealed with XChaCha20-Poly1305 under a key derived (HKDF-SHA256)
//! from a server secret that is not in the database: `MUSICD_CREDENTIALS_SECRET`, or a random
//! one generated once into `data/credentials_secret` (mode 0600). A copy of the database alone
//! does not reveal them; the API only ever returns them masked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::config::Config;
use crate::db::{Db, credentials};

/// Seals and opens credential values.
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault")
    }
}

impl Vault {
    /// The vault of this installation (generating its secret on first use).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let secret = if config.credentials_secret.is_empty() {
            crate::secrets::load_or_create_secret_file(
                &config.data_dir,
                "credentials_secret",
                "a credentials secret",
            )?
        } else {
            config.credentials_secret.clone()
        };
        Ok(Self::from_secret(secret.as_bytes()))
    }

    /// A vault keyed from `secret`.
    pub fn from_secret(secret: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"musicd"), secret);
        let mut key = [0u8; 32];
        hk.expand(b"musicd credentials v1", &mut key)
            .expect("32 bytes is a valid HKDF length");
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// Seals `value`, bound to its provider and name (a sealed value moved to another row
    /// does not open).
    pub fn seal(&self, provider: &str, name: &str, value: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = format!("{provider}/{name}");
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail");
        let mut out = nonce.to_vec();
        out.extend(ct);
        STANDARD.encode(out)
    }

    /// Opens a sealed value; `None` when it was sealed under another secret or altered.
    pub fn open(&self, provider: &str, name: &str, sealed: &str) -> Option<String> {
        let raw = STANDARD.decode(sealed).ok()?;
        if raw.len() < 24 {
            return None;
        }
        let (nonce, ct) = raw.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let aad = format!("{provider}/{name}");
        let pt = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(pt).ok()
    }

    /// A provider's credential, opened, for use at run time.
    pub async fn get(
        &self,
        db: &Db,
        provider: &str,
        name: &str,
    ) -> Result<Option<String>, CredentialError> {
        let Some(sealed) = credentials::sealed(db, provider, name).await? else {
            return Ok(None);
        };
        self.open(provider, name, &sealed)
            .map(Some)
            .ok_or(CredentialError::Unreadable)
    }
}

impl Vault {
    /// Seals and stores a credential that musicd itself obtained (a refresh token), recorded
    /// as set by `musicd`.
    pub async fn set(
        &self,
        db: &Db,
        provider: &str,
        name: &str,
        value: &str,
    ) -> Result<(), CredentialError> {
        let sealed = self.seal(provider, name, value);
        credentials::put(db, provider, name, &sealed, &mask(value), "musicd").await?;
        Ok(())
    }
}

/// Why a stored credential cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The database could not be read.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Sealed under another secret (the secret file was replaced) or altered.
    #[error(
        "the stored credential cannot be decrypted: was the credentials secret changed? set it again"
    )]
    Unreadable,
}

/// The value with all but its last four characters hidden (all hidden when short).
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    if n <= 8 {
        "••••".into()
    } else {
        let tail: String = value.chars().skip(n - 4).collect();
        format!("••••{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_bindings() {
        let v = Vault::from_secret(b"0123456789abcdef0123456789abcdef");
        let s = v.seal("jamendo", "client_id", "abc123secret");
        assert!(!s.contains("abc123secret"));
        assert_eq!(
            v.open("jamendo", "client_id", &s).as_deref(),
            Some("abc123secret")
        );
        assert_eq!(v.open("jamendo", "other", &s), None, "bound to its name");
        let other = Vault::from_secret(b"another secret, 32 bytes or more!!");
        assert_eq!(
            other.open("jamendo", "client_id", &s),
            None,
            "bound to the secret"
        );
        assert_ne!(
            s,
            v.seal("jamendo", "client_id", "abc123secret"),
            "fresh nonce"
        );
        assert_eq!(mask("abc123secret"), "••••cret");
        assert_eq!(mask("short"), "••••");
    }
}
