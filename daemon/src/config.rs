//! Command line and configuration. Every `serve` setting comes, in order of precedence, from
//! its flag, its `PRIVACYPASS_*` environment variable, the `--config` TOML file (same names as
//! the flags), or its default.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "privacypassd",
    version,
    about = "Privacy Pass issuer and redeemer (RFC 9576-9578)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve issuance and redemption over HTTP.
    Serve(Box<ServeArgs>),
    /// Manage issuer keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Run the whole protocol as a client against a running daemon.
    Demo {
        /// Base URL of the daemon.
        #[arg(long, default_value = "http://127.0.0.1:8787")]
        url: String,
        /// API key, when the daemon requires one (`Authorization: Bearer`).
        #[arg(long, env = "PRIVACYPASS_API_KEY")]
        api_key: Option<String>,
    },
    /// Print the shell completion script of privacypassd.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages of privacypassd and of each subcommand into a directory.
    Man {
        /// The directory (created when missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Print a fresh API key (once) and the line that grants it in the --api-keys file.
    New {
        /// Label for logs.
        #[arg(long)]
        name: Option<String>,
        /// Methods the key may call: issue, redeem (comma-separated) [default: both].
        #[arg(long)]
        methods: Option<String>,
        /// Token key ids (hex, or unique prefixes) the key may use [default: all].
        #[arg(long)]
        token_keys: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an issuer key (RSA-2048 unless --type says otherwise).
    Generate {
        /// The key's token type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::BlindRsa2048)]
        key_type: KeyType,
        #[command(flatten)]
        dir: KeysDirArg,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Import a key made elsewhere: for blind-rsa-2048 an RSA-2048 key in PKCS#8 or PKCS#1 PEM;
    /// for voprf-p384 and voprf-ristretto255 the private scalar in hex (RFC 9497
    /// SerializeScalar, the test vectors' skS), or the file form `keys generate` writes.
    Import {
        /// The key file.
        file: PathBuf,
        /// The key's token type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::BlindRsa2048)]
        key_type: KeyType,
        #[command(flatten)]
        dir: KeysDirArg,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// List keys with their ids, windows and states.
    List {
        #[command(flatten)]
        dir: KeysDirArg,
        /// Redemption grace used to tell grace from expired, in seconds.
        #[arg(long, env = "PRIVACYPASS_REDEMPTION_GRACE", default_value_t = DEFAULT_GRACE)]
        redemption_grace: u64,
    },
    /// Rotate the keys directory by the rotation policy (the `serve` settings: flags, --config
    /// file, environment): generate the next key when it is due, extend the issuing key when a
    /// rotation ran late, remove keys whose redemption ended. Idempotent; safe to run from
    /// cron or a timer every few minutes; two at once on one directory make one key.
    Rotate {
        /// Print what would be done, and do nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        settings: Box<ServeArgs>,
    },
    /// Stop issuing with a key now; it stays redeemable for the grace.
    Retire {
        /// The key id (hex), or a unique prefix of it.
        key_id: String,
        #[command(flatten)]
        dir: KeysDirArg,
    },
}

/// The token type of an issuer key, as `keys generate --type` and `keys import --type` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
pub enum KeyType {
    /// 0x0002: Blind RSA (2048-bit).
    #[value(name = "blind-rsa-2048")]
    #[serde(rename = "blind-rsa-2048")]
    BlindRsa2048,
    /// 0x0001: VOPRF (P-384, SHA-384).
    #[value(name = "voprf-p384")]
    #[serde(rename = "voprf-p384")]
    VoprfP384,
    /// 0x0005: VOPRF (ristretto255, SHA-512).
    #[value(name = "voprf-ristretto255")]
    #[serde(rename = "voprf-ristretto255")]
    VoprfRistretto255,
}

impl KeyType {
    pub fn token_type(self) -> privacypass_core::TokenType {
        match self {
            KeyType::BlindRsa2048 => privacypass_core::TokenType::BlindRsa2048,
            KeyType::VoprfP384 => privacypass_core::TokenType::VoprfP384,
            KeyType::VoprfRistretto255 => privacypass_core::TokenType::VoprfRistretto255,
        }
    }

    /// The name `--type` takes and `keys list` shows.
    pub fn name_of(token_type: privacypass_core::TokenType) -> &'static str {
        match token_type {
            privacypass_core::TokenType::BlindRsa2048 => "blind-rsa-2048",
            privacypass_core::TokenType::VoprfP384 => "voprf-p384",
            privacypass_core::TokenType::VoprfRistretto255 => "voprf-ristretto255",
        }
    }
}

#[derive(Debug, Args)]
pub struct KeysDirArg {
    /// Directory of issuer keys.
    #[arg(long, env = "PRIVACYPASS_KEYS_DIR", default_value = "./data/keys")]
    pub keys_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Start of issuance, Unix seconds (default: now).
    #[arg(long)]
    pub not_before: Option<u64>,
    /// How long the key issues, in days.
    #[arg(long, default_value_t = 30)]
    pub lifetime_days: u64,
}

/// Default redemption grace after a key stops issuing: 7 days.
pub const DEFAULT_GRACE: u64 = 7 * 24 * 3600;

/// `serve` flags. Unset values fall back to the config file, then to the defaults.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of these settings (kebab-case names).
    #[arg(long, env = "PRIVACYPASS_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long, env = "PRIVACYPASS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory (the RocksDB spend store lives in DATA_DIR/spends) [default: ./data].
    #[arg(long, env = "PRIVACYPASS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of issuer keys [default: DATA_DIR/keys].
    #[arg(long, env = "PRIVACYPASS_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Spend store URL: rocksdb:PATH, redis://HOST:PORT/DB, redis+cluster://H:P,..., memory:
    /// [default: rocksdb:DATA_DIR/spends].
    #[arg(long, env = "PRIVACYPASS_STORE")]
    pub store: Option<String>,
    /// Seconds a key stays redeemable after it stops issuing [default: 604800].
    #[arg(long, env = "PRIVACYPASS_REDEMPTION_GRACE")]
    pub redemption_grace: Option<u64>,
    /// Generate a key when the keys directory has no key issuing now (development).
    #[arg(long, env = "PRIVACYPASS_GENERATE_KEY_IF_MISSING")]
    pub generate_key_if_missing: Option<bool>,
    /// `issuer-request-uri` published in the issuer directory [default: /token-request].
    #[arg(long, env = "PRIVACYPASS_ISSUER_REQUEST_URI")]
    pub issuer_request_uri: Option<String>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "PRIVACYPASS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most calls in one JSON-RPC batch [default: 64].
    #[arg(long, env = "PRIVACYPASS_MAX_BATCH")]
    pub max_batch: Option<usize>,
    /// Most tokens in one batched TokenRequest on /token-request (amortized or generic,
    /// draft-ietf-privacypass-batched-tokens); a larger batch is refused before any signing
    /// [default: 100].
    #[arg(long, env = "PRIVACYPASS_MAX_BATCH_TOKENS")]
    pub max_batch_tokens: Option<usize>,
    /// Most open connections [default: 4096].
    #[arg(long, env = "PRIVACYPASS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open WebSocket connections (JSON-RPC on /rpc and /api/redeem) [default: 1024].
    #[arg(long, env = "PRIVACYPASS_MAX_WEBSOCKETS")]
    pub max_websockets: Option<usize>,
    /// Seconds a client has to send its request headers [default: 10].
    #[arg(long, env = "PRIVACYPASS_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send its request body [default: 10].
    #[arg(long, env = "PRIVACYPASS_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Seconds a response write may wait for a client that does not read [default: 10].
    #[arg(long, env = "PRIVACYPASS_WRITE_TIMEOUT")]
    pub write_timeout: Option<u64>,
    /// Seconds a connection may stay open without sending anything [default: 60].
    #[arg(long, env = "PRIVACYPASS_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "PRIVACYPASS_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// File of API keys, one a line (the key, or sha256:<hex digest>); issuance then requires
    /// `Authorization: Bearer <key>`.
    #[arg(long, env = "PRIVACYPASS_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Require an API key on the redemption routes too.
    #[arg(long, env = "PRIVACYPASS_REDEEM_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub redeem_auth: Option<bool>,
    /// Serve on an address other than loopback without API keys.
    #[arg(long, env = "PRIVACYPASS_ALLOW_UNAUTHENTICATED", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unauthenticated: Option<bool>,
    /// Calls allowed per API key: N/SECONDS, or off [default: 600/60].
    #[arg(long, env = "PRIVACYPASS_RATE_LIMIT")]
    pub rate_limit: Option<String>,
    /// Persona-Environment-Id sent on every API response.
    #[arg(long, env = "PRIVACYPASS_ENVIRONMENT_ID")]
    pub environment_id: Option<String>,
    /// Persona-Organization-Id sent on every API response.
    #[arg(long, env = "PRIVACYPASS_ORGANIZATION_ID")]
    pub organization_id: Option<String>,
    /// Seconds an Idempotency-Key and its response are kept [default: 86400].
    #[arg(long, env = "PRIVACYPASS_IDEMPOTENCY_TTL")]
    pub idempotency_ttl: Option<u64>,
    /// Issuance calls that all clients together may make without an API key (when no API keys
    /// are configured): N/SECONDS, or off [default: 6000/60].
    #[arg(long, env = "PRIVACYPASS_ANONYMOUS_ISSUE_LIMIT")]
    pub anonymous_issue_limit: Option<String>,
    /// Seconds between purges of the spends of keys no longer redeemable [default: 60].
    #[arg(long, env = "PRIVACYPASS_PURGE_INTERVAL")]
    pub purge_interval: Option<u64>,
    /// Seconds past a key's end of redemption before its spends may be purged: how far the
    /// wall clock may run ahead without live spends being dropped [default: 86400].
    #[arg(long, env = "PRIVACYPASS_PURGE_MARGIN")]
    pub purge_margin: Option<u64>,
    /// Rotate the keys directory by the rotation policy inside this daemon, as
    /// `keys rotate` does, every keys-poll seconds.
    #[arg(long, env = "PRIVACYPASS_ROTATE", num_args = 0..=1, default_missing_value = "true")]
    pub rotate: Option<bool>,
    /// Rotation policy: the token type of the keys it makes [default: blind-rsa-2048].
    #[arg(long, env = "PRIVACYPASS_ROTATION_KEY_TYPE", value_enum)]
    pub rotation_key_type: Option<KeyType>,
    /// Rotation policy: seconds each key issues [default: 604800].
    #[arg(long, env = "PRIVACYPASS_KEY_LIFETIME")]
    pub key_lifetime: Option<u64>,
    /// Rotation policy: seconds the next key is published (listed in the issuer directory
    /// with its not-before) before it issues [default: 86400].
    #[arg(long, env = "PRIVACYPASS_PUBLISH_AHEAD")]
    pub publish_ahead: Option<u64>,
    /// The most keys the issuer directory lists [default: 3].
    #[arg(long, env = "PRIVACYPASS_DIRECTORY_KEYS")]
    pub directory_keys: Option<usize>,
    /// Seconds between looks at the keys directory: a changed directory is reloaded without
    /// SIGHUP [default: 10].
    #[arg(long, env = "PRIVACYPASS_KEYS_POLL")]
    pub keys_poll: Option<u64>,
    /// The issuer directory's Cache-Control max-age; at most publish-ahead minus keys-poll
    /// [default: (publish-ahead - keys-poll) / 2, at most 300].
    #[arg(long, env = "PRIVACYPASS_DIRECTORY_MAX_AGE")]
    pub directory_max_age: Option<u64>,
}

/// The resolved settings of `serve`. Its `Debug` shows the store URL without a password.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub store: String,
    pub redemption_grace: u64,
    pub generate_key_if_missing: bool,
    pub issuer_request_uri: String,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_batch_tokens: usize,
    pub max_connections: usize,
    pub max_websockets: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub json_logs: bool,
    pub api_keys: Option<PathBuf>,
    pub redeem_auth: bool,
    pub allow_unauthenticated: bool,
    /// None when rate limiting is off.
    pub rate_limit: Option<RateLimit>,
    pub environment_id: Option<String>,
    pub organization_id: Option<String>,
    pub idempotency_ttl: u64,
    pub purge_interval: Duration,
    pub purge_margin: u64,
    /// None when off.
    pub anonymous_issue_limit: Option<RateLimit>,
    /// The rotation policy (the directory's listing and max-age follow it too).
    pub rotation: crate::rotation::Policy,
    /// Whether this daemon rotates the keys directory itself.
    pub rotate: bool,
}

/// Purges run at least this long apart.
const MIN_PURGE_INTERVAL: u64 = 1;

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("keys_dir", &self.keys_dir)
            .field("store", &self.store_display())
            .field("redemption_grace", &self.redemption_grace)
            .field("api_keys", &self.api_keys)
            .field("rate_limit", &self.rate_limit)
            .field("purge_interval", &self.purge_interval)
            .field("purge_margin", &self.purge_margin)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The store URL as logs, errors and `Debug` show it: any password replaced.
    pub fn store_display(&self) -> String {
        privacypass_stores::redact(&self.store)
    }
}

impl ServeArgs {
    /// Resolves flags and environment over the config file over the defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            None => ServeArgs::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let keys_dir = self
            .keys_dir
            .or(file.keys_dir)
            .unwrap_or_else(|| data_dir.join("keys"));
        let store = self
            .store
            .or(file.store)
            .unwrap_or_else(|| format!("rocksdb:{}", data_dir.join("spends").display()));
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(format!("log format {other:?}: expected text or json")),
        };
        let settings = Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8787))),
            data_dir,
            keys_dir,
            store,
            redemption_grace: self
                .redemption_grace
                .or(file.redemption_grace)
                .unwrap_or(DEFAULT_GRACE),
            generate_key_if_missing: self
                .generate_key_if_missing
                .or(file.generate_key_if_missing)
                .unwrap_or(false),
            issuer_request_uri: self
                .issuer_request_uri
                .or(file.issuer_request_uri)
                .unwrap_or_else(|| "/token-request".into()),
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(64 * 1024),
            max_batch: self.max_batch.or(file.max_batch).unwrap_or(64),
            max_batch_tokens: self
                .max_batch_tokens
                .or(file.max_batch_tokens)
                .unwrap_or(100),
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(4096),
            max_websockets: self.max_websockets.or(file.max_websockets).unwrap_or(1024),
            header_timeout: Duration::from_secs(
                self.header_timeout.or(file.header_timeout).unwrap_or(10),
            ),
            body_timeout: Duration::from_secs(
                self.body_timeout.or(file.body_timeout).unwrap_or(10),
            ),
            write_timeout: Duration::from_secs(
                self.write_timeout.or(file.write_timeout).unwrap_or(10),
            ),
            idle_timeout: Duration::from_secs(
                self.idle_timeout.or(file.idle_timeout).unwrap_or(60),
            ),
            json_logs,
            api_keys: self.api_keys.or(file.api_keys),
            redeem_auth: self.redeem_auth.or(file.redeem_auth).unwrap_or(false),
            allow_unauthenticated: self
                .allow_unauthenticated
                .or(file.allow_unauthenticated)
                .unwrap_or(false),
            rate_limit: match self.rate_limit.or(file.rate_limit) {
                None => Some(DEFAULT_RATE_LIMIT),
                Some(text) => RateLimit::parse(&text)?,
            },
            environment_id: self.environment_id.or(file.environment_id),
            organization_id: self.organization_id.or(file.organization_id),
            idempotency_ttl: self
                .idempotency_ttl
                .or(file.idempotency_ttl)
                .unwrap_or(24 * 3600),
            purge_interval: Duration::from_secs(
                self.purge_interval.or(file.purge_interval).unwrap_or(60),
            ),
            purge_margin: self.purge_margin.or(file.purge_margin).unwrap_or(86_400),
            anonymous_issue_limit: match self.anonymous_issue_limit.or(file.anonymous_issue_limit) {
                None => Some(DEFAULT_ANONYMOUS_ISSUE_LIMIT),
                Some(text) => RateLimit::parse(&text)?,
            },
            rotation: {
                use crate::rotation::{self, Policy};
                let publish_ahead = self
                    .publish_ahead
                    .or(file.publish_ahead)
                    .unwrap_or(rotation::DEFAULT_PUBLISH_AHEAD);
                let poll = self
                    .keys_poll
                    .or(file.keys_poll)
                    .unwrap_or(rotation::DEFAULT_POLL);
                Policy {
                    token_type: self
                        .rotation_key_type
                        .or(file.rotation_key_type)
                        .unwrap_or(KeyType::BlindRsa2048)
                        .token_type(),
                    lifetime: self
                        .key_lifetime
                        .or(file.key_lifetime)
                        .unwrap_or(rotation::DEFAULT_LIFETIME),
                    publish_ahead,
                    grace: self
                        .redemption_grace
                        .or(file.redemption_grace)
                        .unwrap_or(DEFAULT_GRACE),
                    listed: self
                        .directory_keys
                        .or(file.directory_keys)
                        .unwrap_or(rotation::DEFAULT_LISTED),
                    poll,
                    max_age: self
                        .directory_max_age
                        .or(file.directory_max_age)
                        .unwrap_or_else(|| Policy::derived_max_age(publish_ahead, poll)),
                }
            },
            rotate: self.rotate.or(file.rotate).unwrap_or(false),
        };
        settings.rotation.check()?;
        if settings.purge_interval < Duration::from_secs(MIN_PURGE_INTERVAL) {
            return Err(format!(
                "purge-interval must be at least {MIN_PURGE_INTERVAL} s"
            ));
        }
        for (name, value) in [
            ("environment-id", &settings.environment_id),
            ("organization-id", &settings.organization_id),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!("{name} must be visible ASCII without spaces"));
            }
        }
        if settings.max_batch == 0
            || settings.max_batch_tokens == 0
            || settings.max_body_bytes < 1024
            || settings.max_connections == 0
            || settings.max_websockets == 0
        {
            return Err(
                "max-batch, max-batch-tokens, max-connections and max-websockets must be positive, max-body-bytes at least 1024"
                    .into(),
            );
        }
        Ok(settings)
    }
}

/// `--rate-limit N/SECONDS`: at most N calls per API key in each window of SECONDS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u64,
    pub window_secs: u64,
}

/// The default: 600 calls a minute per API key.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    calls: 600,
    window_secs: 60,
};

/// Issuance calls all clients together may make per window when no API keys are configured.
pub const DEFAULT_ANONYMOUS_ISSUE_LIMIT: RateLimit = RateLimit {
    calls: 6000,
    window_secs: 60,
};

impl RateLimit {
    /// `N/SECONDS`, or `off` for no limit.
    pub fn parse(text: &str) -> Result<Option<RateLimit>, String> {
        if text == "off" {
            return Ok(None);
        }
        let parsed = text.split_once('/').and_then(|(n, s)| {
            Some(RateLimit {
                calls: n.trim().parse().ok()?,
                window_secs: s.trim().parse().ok()?,
            })
        });
        match parsed {
            Some(limit) if limit.calls > 0 && limit.window_secs > 0 => Ok(Some(limit)),
            _ => Err(format!(
                "rate limit {text:?}: expected N/SECONDS with both positive (e.g. 600/60), or off"
            )),
        }
    }

    /// The window holding `now`: (its start, seconds until it ends).
    pub fn window(&self, now: u64) -> (u64, u64) {
        let start = now - now % self.window_secs;
        (start, start + self.window_secs - now)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.calls, self.window_secs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every field of settings, for comparing two.
    fn every_field(s: &Settings) -> String {
        format!(
            "{:?}",
            (
                (
                    &s.listen,
                    &s.data_dir,
                    &s.keys_dir,
                    &s.store,
                    s.redemption_grace
                ),
                (
                    s.generate_key_if_missing,
                    &s.issuer_request_uri,
                    s.max_body_bytes
                ),
                (
                    s.max_batch,
                    s.max_batch_tokens,
                    s.max_connections,
                    s.max_websockets
                ),
                (
                    s.header_timeout,
                    s.body_timeout,
                    s.write_timeout,
                    s.idle_timeout
                ),
                (
                    s.json_logs,
                    &s.api_keys,
                    s.redeem_auth,
                    s.allow_unauthenticated
                ),
                (
                    s.rate_limit,
                    &s.environment_id,
                    &s.organization_id,
                    s.idempotency_ttl
                ),
                (s.purge_interval, s.purge_margin, s.anonymous_issue_limit),
                (s.rotation, s.rotate),
            )
        )
    }

    /// `dist/privacypassd.toml` loads, gives the defaults, and names every `serve` setting
    /// (set, or commented out where there is no default), so it cannot drift from the flags.
    #[test]
    fn the_example_config_names_every_setting_at_its_default() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/privacypassd.toml");
        let loaded = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        let defaults = ServeArgs::default().resolve().unwrap();
        assert_eq!(every_field(&loaded), every_field(&defaults));
        let text = std::fs::read_to_string(&path).unwrap();
        let named: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start_matches("# ").split_once(" = ").map(|(k, _)| k))
            .collect();
        let command = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
        let flags: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "config")
            .collect();
        assert!(flags.len() >= 34, "{flags:?}");
        for flag in &flags {
            assert!(
                named.contains(flag),
                "dist/privacypassd.toml does not name {flag}"
            );
        }
        for name in &named {
            assert!(
                flags.contains(name),
                "dist/privacypassd.toml names {name}, no setting"
            );
        }
    }

    #[test]
    fn rate_limits_parse_and_windows_align() {
        assert_eq!(
            RateLimit::parse("10/60").unwrap(),
            Some(RateLimit {
                calls: 10,
                window_secs: 60
            })
        );
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        for bad in ["10", "0/60", "10/0", "x/1", "10/60s"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
        let limit = RateLimit::parse("5/60").unwrap().unwrap();
        assert_eq!(limit.window(125), (120, 55));
        assert_eq!(limit.window(120), (120, 60));
    }

    #[test]
    fn settings_never_show_a_store_password() {
        let settings = ServeArgs {
            store: Some("redis://user:hunter2-secret@127.0.0.1:6379/0".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://***@127.0.0.1:6379/0"), "{shown}");
        assert_eq!(settings.store_display(), "redis://***@127.0.0.1:6379/0");
        // The real URL is still what the store opens.
        assert!(settings.store.contains("hunter2-secret"));
    }

    #[test]
    fn purge_settings_have_safe_defaults() {
        let settings = ServeArgs::default().resolve().unwrap();
        assert_eq!(settings.purge_margin, 86_400);
        assert_eq!(settings.purge_interval, Duration::from_secs(60));
        assert!(ServeArgs {
            purge_interval: Some(0),
            ..ServeArgs::default()
        }
        .resolve()
        .is_err());
    }
}
