//! privacypassd: the Privacy Pass issuer and redeemer daemon, as a library that `main` calls.

pub mod app;
pub mod auth;
pub mod config;
pub mod deadline;
pub mod demo;
pub mod error;
pub mod guard;
pub mod headers;
pub mod http;
pub mod idempotency;
pub mod jsonrpc;
pub mod keydir;
pub mod layers;
pub mod manual;
pub mod metrics;
pub mod purge;
pub mod ratelimit;
pub mod rotation;
pub mod routes;
pub mod server;
pub mod websocket;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use privacypass_core::{IssuerKey, KeyValidity, TokenType, VoprfIssuerKey};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::app::App;
use crate::config::{KeyType, KeysCommand, Settings, WindowArgs};

/// Lifetime of the development key `--generate-key-if-missing` creates.
const DEV_KEY_LIFETIME: u64 = 30 * 24 * 3600;

pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PRIVACYPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Whether a key of any token type issues at `now`.
fn issues_now(keys: &privacypass_core::KeySet, now: u64) -> bool {
    keys.issuing(now).next().is_some() || keys.voprf_issuing(now).next().is_some()
}

/// `privacypassd serve`.
pub fn serve(settings: Settings) -> Result<(), String> {
    init_tracing(settings.json_logs);
    privacypass_stores::durable::create_dir_all(&settings.data_dir)
        .map_err(|e| format!("{}: {e}", settings.data_dir.display()))?;
    keydir::ensure_dir(&settings.keys_dir).map_err(|e| e.to_string())?;
    let now = privacypass_core::unix_now();
    // Taken before the keys are read: a change made while they are read is seen at the first
    // poll.
    let seen = keydir::fingerprint(&settings.keys_dir).ok();
    let mut keys = keydir::key_set(&settings.keys_dir, settings.redemption_grace)
        .map_err(|e| e.to_string())?;
    if settings.generate_key_if_missing && !issues_now(&keys, now) {
        let validity = KeyValidity::new(now, now + DEV_KEY_LIFETIME).map_err(|e| e.to_string())?;
        let id = keydir::generate(&settings.keys_dir, validity).map_err(|e| e.to_string())?;
        info!(key_id = %hex::encode(id), "generated a development key");
        keys = keydir::key_set(&settings.keys_dir, settings.redemption_grace)
            .map_err(|e| e.to_string())?;
    }
    if !issues_now(&keys, now) {
        warn!(keys_dir = %settings.keys_dir.display(), "no key issues now: issuance will answer -32023 until one does");
    }
    let api_keys = match &settings.api_keys {
        Some(path) => auth::ApiKeys::load(path)?,
        None => auth::ApiKeys::default(),
    };
    check_exposure(&settings, &api_keys)?;
    let backends = privacypass_stores::open_backends(&settings.store).map_err(|e| e.to_string())?;
    #[cfg(feature = "rocksdb")]
    if privacypass_stores::rocks::unsynced_wal() && settings.store.starts_with("rocksdb:") {
        warn!(
            variable = privacypass_stores::rocks::UNSYNCED_WAL_ENV,
            "test-only: the spend log is not synced, a power cut loses acknowledged spends"
        );
    }
    // The store keeps each key's spends as long as this configuration accepts its tokens.
    purge::retain_keys(backends.spends.as_ref(), &keys)
        .map_err(|e| format!("recording how long the keys' spends are kept: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("privacypassd")
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(run(
        Arc::new(App::new(settings, keys, backends, api_keys)),
        seen,
    ))
}

/// Refuses to serve issuance to the network without API keys, unless told to.
fn check_exposure(settings: &Settings, api_keys: &auth::ApiKeys) -> Result<(), String> {
    if api_keys.is_empty() && !settings.listen.ip().is_loopback() && !settings.allow_unauthenticated
    {
        return Err(format!(
            "refusing to serve on {} without API keys: anyone could mint tokens. Give --api-keys FILE, or --allow-unauthenticated to serve anyone",
            settings.listen
        ));
    }
    Ok(())
}

async fn run(app: Arc<App>, seen: Option<u64>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(app.settings.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", app.settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    info!(
        %addr,
        store = %app.settings.store_display(),
        keys = app.keys().entries().len(),
        api_keys = app.api_keys().len(),
        rate_limit = %app.settings.rate_limit.map_or("off".into(), |l| l.to_string()),
        "listening"
    );
    println!("privacypassd listening on http://{addr}");
    let _ = std::io::stdout().flush();

    tokio::spawn(reload_on_sighup(app.clone()));
    tokio::spawn(watch_keys(app.clone(), seen));
    tokio::spawn(purge::run(
        app.store.clone(),
        app.settings.purge_interval,
        app.settings.purge_margin,
    ));
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT"),
        }
    };
    server::serve(app.clone(), listener, shutdown).await;
    info!("stopped");
    Ok(())
}

async fn reload_on_sighup(app: Arc<App>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        error!("cannot listen for SIGHUP: keys will not reload");
        return;
    };
    while hup.recv().await.is_some() {
        reload_keys(&app).await;
        if let Some(path) = &app.settings.api_keys {
            match auth::ApiKeys::load(path) {
                Ok(api_keys) => {
                    info!(api_keys = api_keys.len(), "API keys reloaded");
                    app.replace_api_keys(api_keys);
                }
                Err(e) => error!(error = %e, "API key reload failed; keeping the keys in force"),
            }
        }
    }
}

/// Loads the keys directory again and puts its keys in force; a directory that does not load
/// leaves the keys in force as they were.
async fn reload_keys(app: &Arc<App>) -> bool {
    let dir = app.settings.keys_dir.clone();
    let grace = app.settings.redemption_grace;
    let store = app.store.clone();
    // The store learns the new ends of redemption before any token is accepted under them.
    let load = move || {
        let keys = keydir::key_set(&dir, grace).map_err(|e| e.to_string())?;
        purge::retain_keys(store.as_ref(), &keys)
            .map_err(|e| format!("recording how long the keys' spends are kept: {e}"))?;
        Ok::<_, String>(keys)
    };
    match tokio::task::spawn_blocking(load).await {
        Ok(Ok(keys)) => {
            info!(
                keys = keys.entries().len() + keys.voprf_entries().len(),
                "keys reloaded"
            );
            app.replace_keys(keys);
            true
        }
        Ok(Err(e)) => {
            error!(error = %e, "key reload failed; keeping the keys in force");
            false
        }
        Err(e) => {
            error!(error = %e, "key reload failed; keeping the keys in force");
            false
        }
    }
}

/// Every `--keys-poll` seconds: rotates the keys directory (with `--rotate`), then reloads it
/// when it changed, so a fleet on one keys directory converges within a poll without SIGHUP.
async fn watch_keys(app: Arc<App>, mut seen: Option<u64>) {
    let policy = app.settings.rotation;
    let dir = app.settings.keys_dir.clone();
    let fingerprint = |dir: &std::path::Path| keydir::fingerprint(dir).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(policy.poll));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if app.settings.rotate {
            let dir = dir.clone();
            let rotated = tokio::task::spawn_blocking(move || {
                rotation::rotate(&dir, &policy, privacypass_core::unix_now(), false)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            match rotated {
                Ok(lines) => {
                    for line in lines.iter().filter(|l| !l.starts_with("nothing due")) {
                        info!(action = %line, "key rotation");
                        app.metrics.record_rotation(true);
                    }
                }
                Err(e) => {
                    error!(error = %e, "key rotation failed");
                    app.metrics.record_rotation(false);
                }
            }
        }
        let now = fingerprint(&dir);
        if now != seen && reload_keys(&app).await {
            seen = now;
        }
    }
}

/// `privacypassd api-keys ...`.
pub fn api_keys(command: config::ApiKeysCommand) -> Result<(), String> {
    match command {
        config::ApiKeysCommand::New {
            name,
            methods,
            token_keys,
        } => {
            let (key, mut line) = auth::new_key()?;
            for (setting, value) in [
                ("name", name),
                ("methods", methods),
                ("token-keys", token_keys),
            ] {
                if let Some(value) = value {
                    line.push_str(&format!(" {setting}={value}"));
                }
            }
            // The line must load as the file will load it.
            auth::ApiKeys::parse(&line)?;
            println!("{key}");
            eprintln!("The key above is shown once. Add this line to the --api-keys file:");
            eprintln!("{line}");
        }
    }
    Ok(())
}

fn window(args: &WindowArgs) -> Result<KeyValidity, String> {
    let not_before = args.not_before.unwrap_or_else(privacypass_core::unix_now);
    let lifetime = args
        .lifetime_days
        .checked_mul(86400)
        .ok_or("lifetime too long")?;
    KeyValidity::new(not_before, not_before.saturating_add(lifetime)).map_err(|e| e.to_string())
}

/// A VOPRF private key of `token_type` from a file: the scalar in hex (RFC 9497 SerializeScalar,
/// the vectors' `skS`), the file form `keys generate` writes, whose label must name the same
/// type, or for voprf-p384 a PKCS#8 / SEC 1 PEM private key (what `openssl genpkey` and other
/// issuers write). Errors never show the file's bytes.
fn voprf_key_of_file(token_type: TokenType, bytes: &[u8]) -> Result<VoprfIssuerKey, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
    let trimmed = text.trim();
    let pkcs8 = [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
    ];
    let key = if pkcs8.iter().any(|label| trimmed.starts_with(label)) {
        if token_type != TokenType::VoprfP384 {
            return Err("a PKCS#8 or SEC 1 key file is read for voprf-p384 only".to_string());
        }
        VoprfIssuerKey::from_p384_pkcs8_pem(trimmed.as_bytes())
            .map_err(|_| "not an unencrypted P-384 private key".to_string())?
    } else if trimmed.starts_with("-----BEGIN") {
        VoprfIssuerKey::from_pem(trimmed.as_bytes()).map_err(|e| e.to_string())?
    } else {
        let scalar = zeroize::Zeroizing::new(
            hex::decode(trimmed)
                .map_err(|_| "not a hex scalar nor a VOPRF key file".to_string())?,
        );
        VoprfIssuerKey::from_scalar(token_type, &scalar).map_err(|e| e.to_string())?
    };
    if key.token_type() != token_type {
        return Err(format!(
            "the file holds a {} key, not {}",
            KeyType::name_of(key.token_type()),
            KeyType::name_of(token_type)
        ));
    }
    Ok(key)
}

/// `privacypassd keys ...`.
pub fn keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Generate {
            key_type,
            dir,
            window: w,
        } => {
            let id = match key_type {
                KeyType::BlindRsa2048 => keydir::generate(&dir.keys_dir, window(&w)?),
                _ => keydir::generate_voprf(&dir.keys_dir, key_type.token_type(), window(&w)?),
            }
            .map_err(|e| e.to_string())?;
            println!(
                "generated {} key {} in {}",
                KeyType::name_of(key_type.token_type()),
                hex::encode(id),
                dir.keys_dir.display()
            );
        }
        KeysCommand::Import {
            file,
            key_type,
            dir,
            window: w,
        } => {
            let pem = zeroize::Zeroizing::new(
                std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?,
            );
            let id = match key_type {
                KeyType::BlindRsa2048 => {
                    let key = IssuerKey::from_pem(&pem)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    keydir::add(&dir.keys_dir, key, window(&w)?)
                }
                _ => {
                    let key = voprf_key_of_file(key_type.token_type(), &pem)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    keydir::add_voprf(&dir.keys_dir, key, window(&w)?)
                }
            }
            .map_err(|e| e.to_string())?;
            println!(
                "imported {} key {} into {}",
                KeyType::name_of(key_type.token_type()),
                hex::encode(id),
                dir.keys_dir.display()
            );
        }
        KeysCommand::List {
            dir,
            redemption_grace,
        } => {
            let keys =
                keydir::key_set(&dir.keys_dir, redemption_grace).map_err(|e| e.to_string())?;
            let now = privacypass_core::unix_now();
            println!(
                "{:<64}  {:<18}  {:>9}  {:<8}  {:>11}  {:>11}",
                "token_key_id", "type", "truncated", "state", "not-before", "expires"
            );
            let mut rows: Vec<_> = keys
                .entries()
                .iter()
                .map(|e| {
                    (
                        *e.public.token_key_id(),
                        TokenType::BlindRsa2048,
                        e.validity,
                    )
                })
                .chain(keys.voprf_entries().iter().map(|e| {
                    (
                        *e.key.public_key().token_key_id(),
                        e.key.token_type(),
                        e.validity,
                    )
                }))
                .collect();
            rows.sort_by_key(|(id, _, validity)| (validity.not_before, *id));
            for (id, token_type, validity) in rows {
                println!(
                    "{:<64}  {:<18}  {:>9}  {:<8}  {:>11}  {:>11}",
                    hex::encode(id),
                    KeyType::name_of(token_type),
                    format!("0x{:02x}", id[31]),
                    keys.state(&validity, now).as_str(),
                    validity.not_before,
                    validity.expires
                );
            }
        }
        KeysCommand::Rotate { dry_run, settings } => {
            let settings = settings.resolve()?;
            let lines = rotation::rotate(
                &settings.keys_dir,
                &settings.rotation,
                privacypass_core::unix_now(),
                dry_run,
            )?;
            for line in lines {
                println!("{line}");
            }
        }
        KeysCommand::Retire { key_id, dir } => {
            let id = keydir::retire(&dir.keys_dir, &key_id, privacypass_core::unix_now())
                .map_err(|e| e.to_string())?;
            println!(
                "retired key {}: no longer issues; redeemable until its grace ends",
                hex::encode(id)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::ServeArgs;

    #[test]
    fn serving_the_network_needs_keys_or_an_explicit_opt_out() {
        let settings = |listen: &str, allow: Option<bool>| {
            ServeArgs {
                listen: Some(listen.parse().unwrap()),
                allow_unauthenticated: allow,
                ..ServeArgs::default()
            }
            .resolve()
            .unwrap()
        };
        let none = auth::ApiKeys::default();
        let some = auth::ApiKeys::parse("plain-text-api-key-0001").unwrap();
        assert!(check_exposure(&settings("127.0.0.1:1", None), &none).is_ok());
        assert!(check_exposure(&settings("[::1]:1", None), &none).is_ok());
        let refused = check_exposure(&settings("0.0.0.0:1", None), &none).unwrap_err();
        assert!(refused.contains("--allow-unauthenticated"));
        assert!(check_exposure(&settings("0.0.0.0:1", Some(true)), &none).is_ok());
        assert!(check_exposure(&settings("10.1.2.3:1", None), &some).is_ok());
    }
}
