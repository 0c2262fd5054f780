//! Redemption: JSON-RPC `redeem` on `/rpc` and `/api/redeem`. Verifies a token and records its
//! spend durably; tokens verified here before (the seen-token set) skip the RSA operation.

use privacypass::wire::Token;
use privacypass::{b64, crypto, ErrorCode, Redeemer, Verifier};
use privacypass_rpc::{RedeemParams, Redeemed};

use crate::app::App;
use crate::auth::{ApiMethod, Caller};
use crate::error::ApiError;
use crate::metrics::Op;
use crate::routes::issuance::measured;

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
    let redeemer = Redeemer::new(Verifier::new(app.keys()), app.timed_store.clone());
    // A replay of the very bytes of a token verified here before skips the RSA operation.
    let digest = crypto::sha256(&token);
    let seen = app.seen_tokens.contains(&digest);
    let now = privacypass::unix_now();
    let bindings: Vec<&[u8]> = challenges.iter().map(Vec::as_slice).collect();
    // Verification is a public-key operation (or none, for bytes seen before): it runs here.
    let verified = if seen {
        redeemer.verify_seen_before(&token, &bindings, now)
    } else {
        redeemer.verify(&token, &bindings, now)
    };
    let outcome = match verified {
        Err(e) => Err(e),
        Ok(verified) if redeemer.store().is_remote() => {
            // A store across the network (Redis): its spend (SET NX) tells an already-spent
            // token itself, so one round trip and no separate check, on the blocking pool.
            tokio::task::spawn_blocking(move || redeemer.record(&verified))
                .await
                .map_err(|_| ApiError::new(ErrorCode::Internal, "redemption task failed"))?
        }
        // A local store: the spent check is a local read, so an already-spent token is
        // answered without leaving this thread. The spend waits for an fsync: the store's
        // committer answers once it is durable.
        Ok(verified) => match redeemer.check_not_spent(verified) {
            Err(e) => Err(e),
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
        },
    };
    match outcome {
        Ok(()) => {
            app.seen_tokens.insert(digest);
            Ok(Redeemed::Success)
        }
        Err(e) => {
            // Spent means the token verified: its replays may skip the RSA operation.
            if e == privacypass::RedeemError::AlreadySpent && !seen {
                app.seen_tokens.insert(digest);
            }
            Err(ApiError::from(e))
        }
    }
}
