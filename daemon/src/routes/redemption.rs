//! Redemption: JSON-RPC `redeem` on `/rpc` and `/api/redeem`. Verifies a token and records its
//! spend durably; tokens verified here before (the seen-token set) skip the RSA operation or
//! the PRF evaluation. Privately verifiable tokens (types 0x0001 and 0x0005) are verified with
//! the private key of their `token_key_id`, by the same redeemer, and spent once in the same
//! store, with the same answers.

use privacypass_core::verifier::Verified;
use privacypass_core::wire::Token;
use privacypass_core::{b64, crypto, ErrorCode, RedeemError, Redeemer, TokenType, Verifier};
use privacypass_rpc::{EarlierSettings, RedeemParams, Redeemed};

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::metrics::Op;
use crate::routes::issuance::measured;

/// The token types `redeem` accepts, as the answer to a request of another protocol names them.
const REDEEMED_TYPES: [(TokenType, &str); 3] = [
    (TokenType::BlindRsa2048, "Blind RSA 2048"),
    (TokenType::VoprfP384, "VOPRF P-384"),
    (TokenType::VoprfRistretto255, "VOPRF ristretto255"),
];

/// Spends a verified token once: the outcome of the spend (or of the verification), or an
/// internal failure of the daemon.
async fn spend(
    redeemer: Redeemer,
    verified: Result<Verified, RedeemError>,
) -> Result<Result<(), RedeemError>, ApiError> {
    Ok(match verified {
        Err(e) => Err(e),
        Ok(verified) if !redeemer.store().spend_with_returns_at_once() => {
            // A store whose spend waits on the calling thread: on the blocking pool.
            tokio::task::spawn_blocking(move || redeemer.record(&verified))
                .await
                .map_err(|_| ApiError::new(ErrorCode::Internal, "redemption task failed"))?
        }
        // The spend itself tells an already-spent token: RocksDB answers it at once from its
        // read (no write, no wait), Redis from its SET NX. A first spend is answered once it
        // is durable, from the store's own thread (RocksDB's committer after the fsync,
        // Redis's senders with the reply), so no thread waits per spend in flight.
        Ok(verified) => {
            let (answer, answered) = tokio::sync::oneshot::channel();
            redeemer.record_with(
                &verified,
                Box::new(move |outcome| {
                    let _ = answer.send(outcome);
                }),
            );
            answered
                .await
                .map_err(|_| ApiError::new(ErrorCode::Internal, "the store dropped a spend"))?
        }
    })
}

/// The detail of the -32022 a redemption of the protocol before RFC 9578 gets: what it asked
/// for, what this server redeems instead and where to read about it.
pub fn earlier_protocol_detail(settings: &EarlierSettings) -> String {
    let types: Vec<String> = REDEEMED_TYPES
        .iter()
        .map(|(t, name)| format!("0x{:04x} ({name})", t.value()))
        .collect();
    format!(
        "this is a redemption of the Privacy Pass protocol before RFC 9578 (curve {:?}, hash {:?}, \
         method {:?}), which this server does not redeem; it redeems RFC 9578 tokens of type {}, \
         sent as {{\"token\": \"<base64url Token>\"}} or as data holding one base64 Token: see \
         https://www.rfc-editor.org/rfc/rfc9578 and the README of privacypassd, \"Routes\"",
        settings.curve,
        settings.hash,
        settings.method,
        types.join(", ")
    )
}

/// JSON-RPC `redeem`: verify, then record the spend durably. `params` is refused when the
/// call's params name no token.
pub async fn redeem(
    app: &App,
    caller: &Caller,
    params: Result<RedeemParams, ApiError>,
) -> Result<Redeemed, ApiError> {
    let call = async {
        caller.allow_method(ApiMethod::Redeem)?;
        redeem_inner(app, caller, &params?).await
    };
    measured(app, Op::Redeem, call).await
}

async fn redeem_inner(
    app: &App,
    caller: &Caller,
    params: &RedeemParams,
) -> Result<Redeemed, ApiError> {
    let bad = |m: &str| ApiError::new(ErrorCode::InvalidParams, m);
    let (token, challenges) = params.token_and_challenges();
    let token = b64::decode_any(token).ok_or_else(|| bad("token is not valid base64"))?;
    let challenges = challenges
        .into_iter()
        .map(|c| {
            b64::decode_any(c).ok_or_else(|| match params {
                RedeemParams::Token { .. } => bad("challenge is not valid base64"),
                RedeemParams::Data { .. } => bad("bindings must be base64 strings"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if caller.key.is_some() {
        // A token names its key; a token too short to hold one fails below.
        if let Some(key_id) = Token::encoded_token_key_id(&token) {
            caller.allow_token_key(&key_id)?;
        }
    }
    let now = privacypass_core::unix_now();
    let bindings: Vec<&[u8]> = challenges.iter().map(Vec::as_slice).collect();
    let token_type = Token::decode(&token).ok().map(|t| t.token_type);
    // One redeemer for every type: type 2 verified with the public key of its token_key_id,
    // types 1 and 5 with the private key of theirs (the PRF output recomputed and compared in
    // constant time).
    let redeemer = Redeemer::new(Verifier::new(app.keys()), app.timed_store.clone());
    // A replay of the very bytes of a token verified here before skips the public-key
    // operation (RSA) or the PRF evaluation (VOPRF); every other check is made again.
    let digest = crypto::sha256(&token);
    let seen = app.seen_tokens.contains(&digest);
    // Verification is a public-key or scalar operation (or none, for bytes seen before): it
    // runs here.
    let verified = if seen {
        redeemer.verify_seen_before(&token, &bindings, now)
    } else {
        redeemer.verify(&token, &bindings, now)
    };
    let outcome = spend(redeemer, verified).await?;
    if let Some(token_type) = token_type {
        app.metrics
            .record_type(Op::Redeem, token_type, outcome.is_ok());
    }
    match outcome {
        Ok(()) => {
            app.seen_tokens.insert(digest);
            Ok(Redeemed::Success)
        }
        Err(e) => {
            // Spent means the token verified: its replays may skip the verification.
            if e == privacypass_core::RedeemError::AlreadySpent && !seen {
                app.seen_tokens.insert(digest);
            }
            Err(ApiError::from(e))
        }
    }
}
