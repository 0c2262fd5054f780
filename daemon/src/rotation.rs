//! Scheduled key rotation: a policy (the key type, how long a key issues, how early the next is
//! published, the redemption grace, how many keys the directory lists, how often daemons look
//! at the keys directory), the plan it makes for a keys directory at a given time, and
//! `rotate`, which carries the plan out under a lock file (what `keys rotate` and
//! `serve --rotate` run).
//!
//! The inequality the policy keeps: a key is written to the keys directory at least
//! `publish_ahead` seconds before it issues; every daemon lists it in its issuer directory
//! within `poll` seconds of that; a cache holds a directory at most `max_age` seconds. So with
//! `max_age + poll <= publish_ahead`, every cached directory lists the key before the key
//! issues, and no directory served at any time lacks a key that issues within its max-age.

use std::fs::File;
use std::path::Path;

use privacypass_core::{KeyValidity, TokenKeyId, TokenType};

use crate::keydir;

/// How long a key issues by default: 7 days.
pub const DEFAULT_LIFETIME: u64 = 7 * 24 * 3600;
/// How early the next key is published by default: 1 day.
pub const DEFAULT_PUBLISH_AHEAD: u64 = 24 * 3600;
/// The most keys the directory lists by default (the one issuing and the next).
pub const DEFAULT_LISTED: usize = 3;
/// Seconds between a daemon's looks at the keys directory by default.
pub const DEFAULT_POLL: u64 = 10;
/// The largest directory max-age derived from a policy: 5 minutes.
pub const MAX_DERIVED_MAX_AGE: u64 = 300;
/// The lock file two rotations of one keys directory take in turn.
pub const LOCK_FILE: &str = ".rotate.lock";

/// A rotation policy (see the module's comment for the inequality it keeps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The token type of the keys rotation makes.
    pub token_type: TokenType,
    /// Seconds each key issues.
    pub lifetime: u64,
    /// Seconds a key is published before it issues.
    pub publish_ahead: u64,
    /// Seconds a key stays redeemable after it stops issuing.
    pub grace: u64,
    /// The most keys the issuer directory lists.
    pub listed: usize,
    /// Seconds between a daemon's looks at the keys directory.
    pub poll: u64,
    /// The issuer directory's `Cache-Control: max-age`.
    pub max_age: u64,
}

impl Policy {
    /// The max-age a policy gives the directory unless told otherwise: half of what the
    /// inequality allows, at most [`MAX_DERIVED_MAX_AGE`].
    pub fn derived_max_age(publish_ahead: u64, poll: u64) -> u64 {
        (publish_ahead.saturating_sub(poll) / 2).min(MAX_DERIVED_MAX_AGE)
    }

    /// Refuses a policy that cannot keep its promise, saying why.
    pub fn check(&self) -> Result<(), String> {
        if self.lifetime == 0 || self.poll == 0 {
            return Err("key-lifetime and keys-poll must be positive".into());
        }
        if self.max_age == 0 {
            return Err(format!(
                "publish-ahead ({} s) leaves no directory max-age after keys-poll ({} s): publish the next key earlier",
                self.publish_ahead, self.poll
            ));
        }
        if self.max_age + self.poll > self.publish_ahead {
            return Err(format!(
                "directory-max-age ({} s) + keys-poll ({} s) must be at most publish-ahead ({} s), or a cached directory can lack a key that issues before the cache expires",
                self.max_age, self.poll, self.publish_ahead
            ));
        }
        if self.publish_ahead >= self.lifetime {
            return Err(format!(
                "publish-ahead ({} s) must be shorter than key-lifetime ({} s)",
                self.publish_ahead, self.lifetime
            ));
        }
        if self.listed < 2 {
            return Err("directory-keys must be at least 2 (the key issuing and the next)".into());
        }
        Ok(())
    }
}

/// A key as rotation sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: TokenKeyId,
    pub token_type: TokenType,
    pub validity: KeyValidity,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new key of the policy's type with this window.
    Generate { validity: KeyValidity },
    /// The key issuing last gets this window (it issues until the next key can start).
    Extend {
        id: TokenKeyId,
        validity: KeyValidity,
    },
    /// A key whose redemption ended leaves the directory.
    Remove {
        id: TokenKeyId,
        redeemable_until: u64,
    },
}

/// What rotation does to `keys` at `now`:
///
/// - removes every key whose redemption ended (`expires + grace <= now`);
/// - when no key of the policy's type issues now, generates one that issues at once;
/// - when the keys of that type stop covering issuance within `publish_ahead`, generates the
///   next key to start where they stop, or `publish_ahead` from now if that is later (a
///   rotation that ran late), extending the last key to meet it.
///
/// A plan made again after it was carried out is empty: rotation is idempotent.
pub fn plan(keys: &[KeyInfo], policy: &Policy, now: u64) -> Vec<Action> {
    let mut actions: Vec<Action> = keys
        .iter()
        .filter(|k| k.validity.expires.saturating_add(policy.grace) <= now)
        .map(|k| Action::Remove {
            id: k.id,
            redeemable_until: k.validity.expires.saturating_add(policy.grace),
        })
        .collect();
    let (end, last) = coverage(keys, policy.token_type, now);
    let window = |not_before: u64| KeyValidity {
        not_before,
        expires: not_before.saturating_add(policy.lifetime),
    };
    let Some(last) = last else {
        // Nothing issues now: a key that issues at once (no cache could have listed it).
        actions.push(Action::Generate {
            validity: window(now),
        });
        return actions;
    };
    let earliest = now.saturating_add(policy.publish_ahead);
    if earliest >= end {
        let not_before = end.max(earliest);
        if not_before > end {
            actions.push(Action::Extend {
                id: last.id,
                validity: KeyValidity {
                    not_before: last.validity.not_before,
                    expires: not_before,
                },
            });
        }
        actions.push(Action::Generate {
            validity: window(not_before),
        });
    }
    actions
}

/// What one step did (or, for a dry run, would do), for the operator.
pub fn describe(action: &Action, id: Option<&TokenKeyId>, policy: &Policy) -> String {
    let name = crate::config::KeyType::name_of(policy.token_type);
    match action {
        Action::Generate { validity } => format!(
            "generate {name} key {}: published now, issues from {} to {}, redeemable until {}",
            id.map_or_else(|| "(new)".to_owned(), hex::encode),
            validity.not_before,
            validity.expires,
            validity.expires.saturating_add(policy.grace)
        ),
        Action::Extend { id, validity } => format!(
            "extend key {}: issues until {} (where the next key can start)",
            hex::encode(id),
            validity.expires
        ),
        Action::Remove {
            id,
            redeemable_until,
        } => format!(
            "remove key {}: its redemption ended at {redeemable_until}",
            hex::encode(id)
        ),
    }
}

/// Rotates the keys directory `dir` by `policy` at `now`, holding its lock file so that two
/// rotations at once never make two next keys: the lines saying what was done (what would be,
/// with `dry_run`), or that nothing was due.
pub fn rotate(dir: &Path, policy: &Policy, now: u64, dry_run: bool) -> Result<Vec<String>, String> {
    keydir::ensure_dir(dir).map_err(|e| e.to_string())?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock_exclusive(&lock).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let keys: Vec<KeyInfo> = keydir::windows(dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(id, token_type, validity)| KeyInfo {
            id,
            token_type,
            validity,
        })
        .collect();
    let actions = plan(&keys, policy, now);
    let mut lines = Vec::new();
    for action in &actions {
        let id = if dry_run {
            None
        } else {
            apply(dir, policy, action)?
        };
        let line = describe(action, id.as_ref(), policy);
        lines.push(if dry_run {
            format!("would {line}")
        } else {
            line
        });
    }
    if actions.is_empty() {
        lines.push(nothing_due(&keys, policy, now));
    }
    Ok(lines)
}

/// Waits for the exclusive lock of `file` (flock(2)); it is let go when the file is closed.
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor this `File` owns for the whole call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn apply(dir: &Path, policy: &Policy, action: &Action) -> Result<Option<TokenKeyId>, String> {
    let done = match action {
        Action::Generate { validity } => Some(match policy.token_type {
            TokenType::BlindRsa2048 => keydir::generate(dir, *validity),
            voprf => keydir::generate_voprf(dir, voprf, *validity),
        }),
        Action::Extend { id, validity } => {
            keydir::set_validity(dir, id, validity).map_err(|e| e.to_string())?;
            None
        }
        Action::Remove { id, .. } => {
            keydir::remove(dir, id).map_err(|e| e.to_string())?;
            None
        }
    };
    done.transpose().map_err(|e| e.to_string())
}

fn nothing_due(keys: &[KeyInfo], policy: &Policy, now: u64) -> String {
    let (end, _) = coverage(keys, policy.token_type, now);
    format!(
        "nothing due: {} keys issue until {end}; the next is due at {}",
        crate::config::KeyType::name_of(policy.token_type),
        end.saturating_sub(policy.publish_ahead)
    )
}

/// How far issuance with the policy's type is covered from `now` by keys that follow each
/// other without a gap, and the key that covers it last (`(now, None)` when none issues now).
fn coverage(keys: &[KeyInfo], token_type: TokenType, now: u64) -> (u64, Option<&KeyInfo>) {
    let mut of_type: Vec<&KeyInfo> = keys
        .iter()
        .filter(|k| k.token_type == token_type && k.validity.expires > now)
        .collect();
    of_type.sort_by_key(|k| (k.validity.not_before, k.validity.expires));
    let mut end = now;
    let mut last = None;
    for key in of_type {
        if key.validity.not_before <= end && key.validity.expires > end {
            end = key.validity.expires;
            last = Some(key);
        }
    }
    (end, last)
}

/// Seconds until issuance with keys of `token_type` stops unless a new key is published (0
/// when none issues now).
pub fn issuing_remaining(keys: &[KeyInfo], token_type: TokenType, now: u64) -> u64 {
    coverage(keys, token_type, now).0 - now
}

/// The keys of a key set, as rotation sees them.
pub fn key_infos(keys: &privacypass_core::KeySet) -> Vec<KeyInfo> {
    keys.entries()
        .iter()
        .map(|e| KeyInfo {
            id: *e.public.token_key_id(),
            token_type: TokenType::BlindRsa2048,
            validity: e.validity,
        })
        .chain(keys.voprf_entries().iter().map(|e| KeyInfo {
            id: *e.key.public_key().token_key_id(),
            token_type: e.key.token_type(),
            validity: e.validity,
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use privacypass_core::directory::IssuerDirectory;
    use privacypass_core::{Client, Issuer, TokenChallenge, Verifier};

    use super::*;

    const DAY: u64 = 24 * 3600;
    const T0: u64 = 1_800_000_000;

    fn default_policy() -> Policy {
        Policy {
            token_type: TokenType::BlindRsa2048,
            lifetime: DEFAULT_LIFETIME,
            publish_ahead: DEFAULT_PUBLISH_AHEAD,
            grace: crate::config::DEFAULT_GRACE,
            listed: DEFAULT_LISTED,
            poll: DEFAULT_POLL,
            max_age: Policy::derived_max_age(DEFAULT_PUBLISH_AHEAD, DEFAULT_POLL),
        }
    }

    /// Whether the keys a directory lists issue at every second of `[from, to]`.
    fn covers(
        directory: &IssuerDirectory,
        keys: &privacypass_core::KeySet,
        from: u64,
        to: u64,
    ) -> bool {
        let mut windows: Vec<KeyValidity> = directory
            .token_keys
            .iter()
            .map(|listed| {
                keys.entries()
                    .iter()
                    .find(|e| e.public.spki() == listed.token_key.as_slice())
                    .expect("a listed key is in the key set")
                    .validity
            })
            .collect();
        windows.sort_by_key(|v| v.not_before);
        let mut covered = from;
        for v in windows {
            if v.not_before <= covered && v.expires > covered {
                covered = v.expires;
            }
        }
        covered > to
    }

    /// Whether a client holding `directory` from `from` to `to`, taking the first key whose
    /// not-before has passed (RFC 9578 §4), takes a key that issues, at every second: checked
    /// where the choice or a key's issuance can change (each not-before and end, and the
    /// second before), and at both ends.
    fn first_started_issues(
        directory: &IssuerDirectory,
        keys: &privacypass_core::KeySet,
        from: u64,
        to: u64,
    ) -> bool {
        let validity = |listed: &privacypass_core::directory::DirectoryKey| {
            keys.entries()
                .iter()
                .find(|e| e.public.spki() == listed.token_key.as_slice())
                .expect("a listed key is in the key set")
                .validity
        };
        let mut at = vec![from, to];
        for listed in &directory.token_keys {
            let v = validity(listed);
            for edge in [v.not_before, v.expires] {
                at.extend([edge.saturating_sub(1), edge]);
            }
        }
        at.into_iter().filter(|s| (from..=to).contains(s)).all(|s| {
            directory
                .token_keys
                .iter()
                .find(|k| k.not_before.is_none_or(|nb| nb <= s))
                .is_some_and(|k| validity(k).issues_at(s))
        })
    }

    /// 60 days of the default policy, a minute at a time, with `keys rotate` run every five
    /// minutes (and not at all for 12 hours once, from when a key is due): at every minute a
    /// key issues (exactly one, outside the hand-over); the directory served at every minute
    /// lists, for its whole max-age, keys that issue; a token issued every 6 hours verifies
    /// until its key's end of redemption and not after; the keys directory stays bounded.
    #[test]
    fn sixty_days_of_the_default_policy() {
        let dir = tempfile::tempdir().unwrap();
        let policy = default_policy();
        policy.check().unwrap();
        let challenge = TokenChallenge::new(2, b"issuer.example", &[], b"").unwrap();
        // Each token, its key, and the end of redemption its key had when last seen.
        let mut tokens: Vec<(Vec<u8>, TokenKeyId, u64)> = Vec::new();
        let mut keys = Arc::new(privacypass_core::KeySet::new(policy.grace));
        let mut seen = None;
        let mut generated = 0;
        let (outage_from, outage_to) = (T0 + 20 * DAY, T0 + 20 * DAY + 12 * 3600);
        let mut t = T0;
        while t < T0 + 60 * DAY {
            let minute = (t - T0) / 60;
            if minute % 5 == 0 && !(outage_from..outage_to).contains(&t) {
                let lines = rotate(dir.path(), &policy, t, false).unwrap();
                generated += lines.iter().filter(|l| l.starts_with("generate")).count();
            }
            // The daemon's view: the keys directory as of its last poll (every 10 s).
            let now_fingerprint = keydir::fingerprint(dir.path()).ok();
            if now_fingerprint != seen {
                keys = Arc::new(keydir::key_set(dir.path(), policy.grace).unwrap());
                seen = now_fingerprint;
            }
            let issuing = keys.issuing(t).count();
            assert!(issuing >= 1, "no key issues at minute {minute}");
            let directory = IssuerDirectory::of_published_keys(
                &keys,
                "/t",
                t,
                policy.publish_ahead,
                policy.listed,
            );
            assert!(
                covers(&directory, &keys, t, t + policy.max_age),
                "the directory served at minute {minute} lacks a key issuing within its max-age"
            );
            assert!(
                first_started_issues(&directory, &keys, t, t + policy.max_age),
                "a client of the directory served at minute {minute} would ask a key that does not issue"
            );
            if minute % (6 * 60) == 0 {
                let entry = keys.issuing(t).next().unwrap();
                let pending = Client::new(entry.public.clone())
                    .request(&challenge)
                    .unwrap();
                let sig = Issuer::new(keys.clone())
                    .issue(entry.public.token_key_id(), &pending.request().encode(), t)
                    .unwrap();
                let token = pending.finalize(&sig).unwrap().encode();
                let id = *entry.public.token_key_id();
                tokens.push((token, id, keys.redeemable_until(&entry.validity)));
                let verifier = Verifier::new(keys.clone());
                for (token, id, until) in &mut tokens {
                    let verified = verifier.verify(token, &[], t);
                    match keys
                        .entries()
                        .iter()
                        .find(|e| e.public.token_key_id() == id)
                    {
                        Some(entry) => {
                            // A late rotation may extend a key; nothing shortens one.
                            let now_until = keys.redeemable_until(&entry.validity);
                            assert!(now_until >= *until, "a key's redemption was shortened");
                            *until = now_until;
                            assert_eq!(verified.is_ok(), t < *until, "until {until} at {t}");
                        }
                        None => {
                            assert!(t >= *until, "a key removed before its end ({until} at {t})");
                            assert!(verified.is_err(), "a token of a removed key verified");
                        }
                    }
                }
            }
            t += 60;
        }
        // About one key a week, and only the keys still redeemable are kept.
        assert!((8..=11).contains(&generated), "{generated} keys generated");
        let kept = keydir::load_all(dir.path()).unwrap().len();
        assert!(kept <= 4, "{kept} keys in the directory");
        assert!(
            tokens.iter().any(|(_, _, until)| *until <= t),
            "some tokens' keys ended"
        );
    }

    #[test]
    fn a_late_rotation_extends_the_issuing_key_to_meet_the_next() {
        let policy = default_policy();
        let key = |nb: u64, exp: u64| KeyInfo {
            id: [nb as u8; 32],
            token_type: TokenType::BlindRsa2048,
            validity: KeyValidity::new(nb, exp).unwrap(),
        };
        let current = key(T0, T0 + policy.lifetime);
        // Due a day before the end; run an hour before it.
        let now = T0 + policy.lifetime - 3600;
        let late = plan(&[current], &policy, now);
        assert_eq!(
            late,
            vec![
                Action::Extend {
                    id: current.id,
                    validity: KeyValidity::new(T0, now + policy.publish_ahead).unwrap()
                },
                Action::Generate {
                    validity: KeyValidity::new(
                        now + policy.publish_ahead,
                        now + policy.publish_ahead + policy.lifetime
                    )
                    .unwrap()
                },
            ]
        );
        // On time: the next starts where the current ends; not yet due: nothing.
        let due = T0 + policy.lifetime - policy.publish_ahead;
        assert_eq!(
            plan(&[current], &policy, due),
            vec![Action::Generate {
                validity: KeyValidity::new(T0 + policy.lifetime, T0 + 2 * policy.lifetime).unwrap()
            }]
        );
        assert!(plan(&[current], &policy, due - 1).is_empty());
        // Nothing issuing: a key at once. Redemption over: removed.
        assert_eq!(
            plan(&[], &policy, T0),
            vec![Action::Generate {
                validity: KeyValidity::new(T0, T0 + policy.lifetime).unwrap()
            }]
        );
        let ended = key(T0 - 30 * DAY, T0 - 20 * DAY);
        assert!(
            plan(&[ended, current], &policy, T0 + 1).contains(&Action::Remove {
                id: ended.id,
                redeemable_until: T0 - 20 * DAY + policy.grace
            })
        );
    }

    #[test]
    fn two_rotations_at_once_make_one_key() {
        let policy = Policy {
            token_type: TokenType::VoprfRistretto255,
            ..default_policy()
        };
        // Four rotations of `dir` at `now`, started together.
        let race = |dir: &Path, now: u64| {
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let runs: Vec<_> = (0..4)
                .map(|_| {
                    let (dir, barrier) = (dir.to_owned(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        rotate(&dir, &policy, now, false).unwrap()
                    })
                })
                .collect();
            for run in runs {
                run.join().unwrap();
            }
        };
        for round in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let now = T0 + round;
            race(dir.path(), now);
            assert_eq!(
                keydir::load_all(dir.path()).unwrap().len(),
                1,
                "round {round}"
            );
            // Due again: still one next key however many rotate.
            race(dir.path(), now + policy.lifetime - policy.publish_ahead);
            assert_eq!(
                keydir::load_all(dir.path()).unwrap().len(),
                2,
                "round {round}"
            );
        }
    }

    #[test]
    fn a_dry_run_changes_nothing_and_a_policy_that_cannot_hold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let policy = default_policy();
        let lines = rotate(dir.path(), &policy, T0, true).unwrap();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("would generate blind-rsa-2048 key"),
            "{lines:?}"
        );
        assert!(keydir::load_all(dir.path()).unwrap().is_empty());
        let lines = rotate(dir.path(), &policy, T0, false).unwrap();
        assert!(
            lines[0].starts_with("generate blind-rsa-2048 key"),
            "{lines:?}"
        );
        let again = rotate(dir.path(), &policy, T0 + 60, false).unwrap();
        assert!(again[0].starts_with("nothing due"), "{again:?}");
        for bad in [
            Policy {
                max_age: policy.publish_ahead,
                ..policy
            },
            Policy {
                publish_ahead: 5,
                max_age: Policy::derived_max_age(5, 10),
                ..policy
            },
            Policy {
                publish_ahead: policy.lifetime,
                ..policy
            },
            Policy {
                listed: 1,
                ..policy
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let message = Policy {
            max_age: policy.publish_ahead,
            ..policy
        }
        .check()
        .unwrap_err();
        assert!(
            message.contains("must be at most publish-ahead"),
            "{message}"
        );
    }
}
