//! Dropping the spends of keys that can no longer be redeemed, without trusting a wall clock
//! that jumped, and telling the store how long each loaded key's spends must be kept.

use std::time::{Duration, Instant};

use privacypass_core::{KeySet, SpendStore, StoreError};
use tracing::{error, info, warn};

/// How far the wall clock may drift from the monotonic clock between two purges before the
/// purge stops trusting it.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(120);

/// Tells the store, for every key of `keys`, the end of redemption this configuration gives
/// it, so that no purge drops a spend this configuration accepts. Called before a key set is
/// put in force; an error leaves the set out of force.
pub fn retain_keys(store: &dyn SpendStore, keys: &KeySet) -> Result<(), StoreError> {
    for entry in keys.entries() {
        store.retain_until(
            entry.public.token_key_id(),
            keys.redeemable_until(&entry.validity),
        )?;
    }
    Ok(())
}

/// Watches the wall clock against the monotonic clock. After a jump (either way) purges are
/// refused until the wall clock has agreed with the monotonic one for `margin` seconds: a clock
/// that was wrong once is trusted again only after as long as the margin covers.
#[derive(Debug)]
pub struct ClockGuard {
    wall: u64,
    mono: Instant,
    trusted_from: Instant,
    margin: Duration,
}

/// What a purge tick did.
#[derive(Debug, PartialEq, Eq)]
pub enum PurgeOutcome {
    /// Spends of this many keys (or records) dropped; spends of keys whose end is after
    /// `cutoff` (now less the margin) were kept.
    Purged { dropped: u64, cutoff: u64 },
    /// The wall clock jumped by `jump` seconds (positive: forward) at this tick or recently:
    /// nothing was dropped, and nothing will be until `resumes_in` has passed without a jump.
    ClockJumped { jump: i64, resumes_in: Duration },
}

impl ClockGuard {
    pub fn new(wall: u64, mono: Instant, margin: u64) -> Self {
        ClockGuard {
            wall,
            mono,
            trusted_from: mono,
            margin: Duration::from_secs(margin),
        }
    }

    /// Compares the wall clock with where the monotonic clock says it should be. Ok when it
    /// may be trusted now; the jump in seconds (0 when an earlier jump is still too recent).
    pub fn check(&mut self, wall: u64, mono: Instant) -> Result<(), (i64, Duration)> {
        let expected = self
            .wall
            .saturating_add(mono.saturating_duration_since(self.mono).as_secs());
        let jump = wall as i64 - expected as i64;
        let mut found = 0;
        if jump.unsigned_abs() > CLOCK_TOLERANCE.as_secs() {
            found = jump;
            self.trusted_from = mono + self.margin;
        }
        // The reading becomes the new reference either way: drift does not add up.
        self.wall = wall;
        self.mono = mono;
        if mono < self.trusted_from {
            return Err((found, self.trusted_from - mono));
        }
        Ok(())
    }
}

/// One purge tick: refused when the wall clock jumped, otherwise the store drops the spends of
/// keys whose end of redemption is before `wall - margin`.
pub fn purge_once(
    store: &dyn SpendStore,
    guard: &mut ClockGuard,
    wall: u64,
    mono: Instant,
    margin: u64,
) -> Result<PurgeOutcome, StoreError> {
    if let Err((jump, resumes_in)) = guard.check(wall, mono) {
        return Ok(PurgeOutcome::ClockJumped { jump, resumes_in });
    }
    let cutoff = wall.saturating_sub(margin);
    let dropped = store.purge_expired(cutoff)?;
    Ok(PurgeOutcome::Purged { dropped, cutoff })
}

/// Runs `purge_once` every `interval` on the blocking pool, logging what it drops or why it
/// refused.
pub async fn run(store: std::sync::Arc<dyn SpendStore>, interval: Duration, margin: u64) {
    let mut tick = tokio::time::interval(interval);
    let guard = std::sync::Arc::new(std::sync::Mutex::new(ClockGuard::new(
        privacypass_core::unix_now(),
        Instant::now(),
        margin,
    )));
    loop {
        tick.tick().await;
        let (store, guard) = (store.clone(), guard.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let mut guard = guard
                .lock()
                .map_err(|_| StoreError("purge clock lock poisoned".into()))?;
            purge_once(
                store.as_ref(),
                &mut guard,
                privacypass_core::unix_now(),
                Instant::now(),
                margin,
            )
        })
        .await;
        match outcome {
            Ok(Ok(PurgeOutcome::Purged { dropped: 0, .. })) => {}
            Ok(Ok(PurgeOutcome::Purged { dropped, cutoff })) => info!(
                dropped,
                cutoff,
                margin,
                "dropped the spends of keys whose redemption ended before the cutoff"
            ),
            Ok(Ok(PurgeOutcome::ClockJumped { jump, resumes_in })) if jump != 0 => error!(
                jump_secs = jump,
                resumes_in_secs = resumes_in.as_secs(),
                "the wall clock jumped: no spends are purged until it has been steady for the purge margin"
            ),
            Ok(Ok(PurgeOutcome::ClockJumped { .. })) => {}
            Ok(Err(e)) => warn!(error = %e, "purging expired spends failed"),
            Err(e) => warn!(error = %e, "purging expired spends failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_either_way_suspends_purges_for_the_margin() {
        let t0 = Instant::now();
        let mut guard = ClockGuard::new(1_000_000, t0, 3600);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(guard.check(1_000_060, at(60)).is_ok());
        // Drift within the tolerance is no jump.
        assert!(guard.check(1_000_150, at(120)).is_ok());
        // A day forward in a minute.
        let (jump, resumes) = guard.check(1_086_610, at(180)).unwrap_err();
        assert_eq!(jump, 86_400);
        assert_eq!(resumes, Duration::from_secs(3600));
        // Steady since, but not yet for the margin: still refused, no new jump.
        assert_eq!(guard.check(1_086_670, at(240)).unwrap_err().0, 0);
        // The clock corrected back: a jump again, and the wait starts over.
        let (jump, resumes) = guard.check(1_000_300, at(300)).unwrap_err();
        assert_eq!((jump, resumes), (-86_430, Duration::from_secs(3600)));
        assert!(guard.check(1_003_900, at(3900)).is_ok());
    }

    #[cfg(feature = "rocksdb")]
    #[test]
    fn a_clock_that_jumps_ahead_drops_nothing_on_the_real_store() {
        use privacypass_core::SpendOutcome;
        let dir = tempfile::tempdir().unwrap();
        let store = privacypass_stores::rocks::RocksStore::open(dir.path()).unwrap();
        let (wall, t0, margin) = (1_000_000u64, Instant::now(), 86_400u64);
        let end = wall + 3600;
        store.spend(&[1; 32], &[1; 32], end).unwrap();
        let mut guard = ClockGuard::new(wall, t0, margin);
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Ten days ahead for one tick: refused, the spend stays.
        let outcome = purge_once(&store, &mut guard, wall + 10 * 86_400, at(60), margin).unwrap();
        assert!(matches!(outcome, PurgeOutcome::ClockJumped { jump, .. } if jump > 0));
        // Corrected back: a jump again, still nothing dropped.
        let outcome = purge_once(&store, &mut guard, wall + 120, at(120), margin).unwrap();
        assert!(matches!(outcome, PurgeOutcome::ClockJumped { .. }));
        assert_eq!(
            store.spend(&[1; 32], &[1; 32], end).unwrap(),
            SpendOutcome::AlreadySpent
        );
        // A steady clock past the key's end, but within the margin: kept.
        let steady = |s: u64| (wall + 120 + s, at(120 + s));
        let (w, m) = steady(margin + 1);
        assert!(w > end);
        assert_eq!(
            purge_once(&store, &mut guard, w, m, margin).unwrap(),
            PurgeOutcome::Purged {
                dropped: 0,
                cutoff: w - margin
            }
        );
        // Past the end plus the margin: dropped.
        let (w, m) = steady(margin + 3600 + 1);
        assert!(matches!(
            purge_once(&store, &mut guard, w, m, margin).unwrap(),
            PurgeOutcome::Purged { dropped: 1, .. }
        ));
    }
}
