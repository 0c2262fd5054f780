//! The Privacy Pass protocol core: RFC 9577 / RFC 9578 wire formats and HTTP authentication
//! headers, RSA-2048 issuer keys, the RFC 9474 blind-signature issuer, client and verifier for
//! token type 0x0002, the VOPRF issuer, client and redeemer of the privately verifiable types
//! 0x0001 (P-384) and 0x0005 (ristretto255), and the spend-store trait that makes a redemption
//! happen exactly once.
//!
//! This crate is synchronous and free of sockets and async runtimes, so the daemon and the C
//! library link the same code.
#![forbid(unsafe_code)]

pub mod b64;
pub mod batch;
pub mod client;
pub mod codes;
pub mod crypto;
pub mod directory;
pub mod header;
pub mod issuer;
pub mod keys;
pub mod private_token;
pub mod redeem;
pub mod rsa_blind;
pub mod store;
pub mod verifier;
pub mod wire;

pub use client::{Client, PendingToken};
pub use codes::{ErrorCode, LibraryCode};
pub use issuer::{IssueError, Issuer};
pub use keys::{
    IssuerKey, KeyError, KeySet, KeyValidity, PublicKey, TokenKeyId, VoprfIssuerKey, VoprfPublicKey,
};
pub use private_token::{
    PendingVoprfToken, VoprfClient, VoprfClientError, VoprfIssueError, VoprfIssuer,
};
pub use redeem::{RedeemError, Redeemer};
pub use store::{CommitSizes, MemoryStore, SpendOutcome, SpendStore, StoreError};
pub use verifier::{Verifier, VerifyError};
pub use wire::{
    DecodeError, Token, TokenChallenge, TokenRequest, TokenResponse, TokenType, VoprfTokenResponse,
};

/// Seconds since the Unix epoch, the clock every validity window is expressed in.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
