-- Provider credentials (API keys, client ids), sealed with a key that is not in the
-- database: XChaCha20-Poly1305, nonce and ciphertext base64-encoded.
CREATE TABLE credentials (
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    hint TEXT NOT NULL,
    updated_by TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider, name)
);
