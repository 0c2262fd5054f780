//! Redemption: verify a token, then record its spend exactly once. Success is answered only
//! after the store has recorded the spend; a store failure records and acknowledges nothing.

use std::sync::Arc;

use crate::codes::ErrorCode;
use crate::store::{SpendOutcome, SpendStore, StoreError};
use crate::verifier::{decode_token, Verified, Verifier, VerifyError};
use crate::wire::Token;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("token already spent")]
    AlreadySpent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RedeemError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RedeemError::Verify(e) => e.code(),
            RedeemError::AlreadySpent => ErrorCode::AlreadySpent,
            RedeemError::Store(_) => ErrorCode::StoreUnavailable,
        }
    }
}

/// A verifier and a spend store.
#[derive(Clone)]
pub struct Redeemer {
    verifier: Verifier,
    store: Arc<dyn SpendStore>,
}

impl std::fmt::Debug for Redeemer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redeemer")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Redeemer {
    pub fn new(verifier: Verifier, store: Arc<dyn SpendStore>) -> Self {
        Redeemer { verifier, store }
    }

    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    pub fn store(&self) -> &Arc<dyn SpendStore> {
        &self.store
    }

    /// Verifies the token and records its spend. The spend itself tells an already-spent
    /// token, so no separate spent check is made (a network round trip on a shared store).
    pub fn redeem(
        &self,
        token: &[u8],
        expected_challenges: &[&[u8]],
        now: u64,
    ) -> Result<Verified, RedeemError> {
        let verified = self.verify(token, expected_challenges, now)?;
        self.record(&verified)?;
        Ok(verified)
    }

    /// The first half of `redeem`: verification alone (a public-key operation, no store), so
    /// callers may run it where blocking is not allowed. `record` must follow, and is what makes
    /// the spend exactly once: it answers `AlreadySpent` itself.
    pub fn verify(
        &self,
        token: &[u8],
        expected_challenges: &[&[u8]],
        now: u64,
    ) -> Result<Verified, RedeemError> {
        Ok(self.verifier.verify(token, expected_challenges, now)?)
    }

    /// `verify` for a token whose exact bytes verified before (see
    /// `Verifier::verify_token_seen_before`): no RSA operation.
    pub fn verify_seen_before(
        &self,
        token: &[u8],
        expected_challenges: &[&[u8]],
        now: u64,
    ) -> Result<Verified, RedeemError> {
        Ok(self.verifier.verify_token_seen_before(
            decode_token(token)?,
            expected_challenges,
            now,
        )?)
    }

    /// Fails with `AlreadySpent` when the store holds the spend of a verified token: a read,
    /// for a caller that answers a spent token without waiting for `record` (a local store).
    pub fn check_not_spent(&self, verified: Verified) -> Result<Verified, RedeemError> {
        check_not_spent(&self.store, &verified.token)?;
        Ok(verified)
    }

    /// `record` answered through `done`; without blocking the caller when the store is not
    /// remote (`SpendStore::is_remote`).
    pub fn record_with(
        &self,
        verified: &Verified,
        done: Box<dyn FnOnce(Result<(), RedeemError>) + Send>,
    ) {
        record_with(
            &self.store,
            &verified.token,
            verified.redeemable_until,
            done,
        );
    }

    /// The second half of `redeem`: records the spend of a verified token, durably and at
    /// most once. May block (an fsync).
    pub fn record(&self, verified: &Verified) -> Result<(), RedeemError> {
        record(&self.store, &verified.token, verified.redeemable_until)
    }
}

/// The spend of a verified token of any type (its key id and nonce), kept until `until`: durably
/// and at most once. May block (an fsync).
pub(crate) fn record(
    store: &Arc<dyn SpendStore>,
    token: &Token,
    until: u64,
) -> Result<(), RedeemError> {
    spent_once(store.spend(&token.token_key_id, &token.nonce, until))
}

/// `record` answered through `done`, without blocking the caller when the store is not remote.
pub(crate) fn record_with(
    store: &Arc<dyn SpendStore>,
    token: &Token,
    until: u64,
    done: Box<dyn FnOnce(Result<(), RedeemError>) + Send>,
) {
    store.spend_with(
        &token.token_key_id,
        &token.nonce,
        until,
        Box::new(move |outcome| done(spent_once(outcome))),
    );
}

/// `AlreadySpent` when the store holds the spend of a verified token of any type (a read).
pub(crate) fn check_not_spent(
    store: &Arc<dyn SpendStore>,
    token: &Token,
) -> Result<(), RedeemError> {
    if store.is_spent(&token.token_key_id, &token.nonce)? {
        return Err(RedeemError::AlreadySpent);
    }
    Ok(())
}

/// A store's answer to a spend as the redemption's outcome: only the first spend succeeds.
fn spent_once(outcome: Result<SpendOutcome, StoreError>) -> Result<(), RedeemError> {
    match outcome? {
        SpendOutcome::Recorded => Ok(()),
        SpendOutcome::AlreadySpent => Err(RedeemError::AlreadySpent),
    }
}
