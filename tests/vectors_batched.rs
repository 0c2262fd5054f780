//! The batched-issuance vectors (draft-ietf-privacypass-batched-tokens), end to end through the
//! public API: amortized batches of types 0x0001 and 0x0005 (one proof per batch), and generic
//! batches mixing types 0x0001, 0x0002 and 0x0005.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{array, hex_field, vectors};
use privacypass_core::batch::{
    issue_generic, AmortizedBatchTokenRequest, AmortizedBatchTokenResponse, BatchError,
    GenericBatchTokenRequest, GenericBatchTokenResponse, PendingEntry, PendingGenericBatch,
};
use privacypass_core::wire::TokenType;
use privacypass_core::{
    Client, IssuerKey, KeySet, KeyValidity, MemoryStore, RedeemError, Redeemer, Token,
    TokenChallenge, Verifier, VoprfClient, VoprfClientError, VoprfIssueError, VoprfIssuer,
    VoprfIssuerKey,
};
use serde_json::Value;

const NOW: u64 = 1_700_000_000;

fn hex_list(v: &Value, name: &str) -> Vec<Vec<u8>> {
    v[name]
        .as_array()
        .unwrap_or_else(|| panic!("no list {name}"))
        .iter()
        .map(|x| hex::decode(x.as_str().unwrap()).unwrap())
        .collect()
}

fn amortized(file: &str, token_type: TokenType) {
    let all = vectors(file);
    assert_eq!(all.len(), 5, "{file}");
    for (i, v) in all.iter().enumerate() {
        let what = format!("{file} #{i}");
        let key = VoprfIssuerKey::from_scalar(token_type, &hex_field(v, "sk_s")).unwrap();
        let public = key.public_key().clone();
        assert_eq!(public.bytes(), hex_field(v, "pk_s").as_slice(), "{what}");
        let mut set = KeySet::new(0);
        set.insert_voprf_key(key, KeyValidity::new(0, u64::MAX).unwrap())
            .unwrap();
        let keys = Arc::new(set);
        let request = hex_field(v, "token_request");
        let response = hex_field(v, "token_response");
        let tokens = hex_list(v, "tokens");
        let nonces: Vec<[u8; 32]> = hex_list(v, "nonces").iter().map(|n| array(n)).collect();
        let blinds = hex_list(v, "blinds");
        let blinds: Vec<&[u8]> = blinds.iter().map(Vec::as_slice).collect();

        // The layouts: both decode strictly and encode back byte for byte.
        let decoded = AmortizedBatchTokenRequest::decode(&request, 100).unwrap();
        assert_eq!(decoded.blinded_msgs.len(), tokens.len(), "{what}");
        assert_eq!(decoded.encode(), request, "{what}: request layout");
        let theirs = AmortizedBatchTokenResponse::decode(token_type, &response, 100).unwrap();
        assert_eq!(theirs.encode(), response, "{what}: response layout");
        assert_eq!(
            AmortizedBatchTokenRequest::decode(&request, tokens.len() - 1).unwrap_err(),
            BatchError::TooManyTokens {
                max: tokens.len() - 1
            }
        );

        // Client: the vector's nonces and blinds reproduce the request; its response finalizes
        // into the vector's tokens.
        let challenge = TokenChallenge::decode(&hex_field(v, "token_challenge")).unwrap();
        let client = VoprfClient::new(public.clone());
        let pending = client
            .request_amortized_with(&challenge, &nonces, &blinds)
            .unwrap();
        assert_eq!(pending.request().encode(), request, "{what}: token_request");
        let finalized: Vec<Vec<u8>> = pending
            .finalize(&response)
            .unwrap()
            .iter()
            .map(Token::encode)
            .collect();
        assert_eq!(finalized, tokens, "{what}: tokens");

        // Issuer: the same evaluated elements, a fresh proof (one for the batch) that verifies.
        let issuer = VoprfIssuer::new(keys.clone());
        let ours = issuer.issue_amortized(&request, NOW, 100).unwrap();
        assert_eq!(ours.evaluated_msgs, theirs.evaluated_msgs, "{what}");
        assert_ne!(ours.evaluated_proof, theirs.evaluated_proof, "{what}");
        let again: Vec<Vec<u8>> = pending
            .finalize(&ours.encode())
            .unwrap()
            .iter()
            .map(Token::encode)
            .collect();
        assert_eq!(again, tokens, "{what}: our response finalizes");
        // A batch over the limit is refused before any evaluation.
        assert_eq!(
            issuer.issue_amortized(&request, NOW, 2).unwrap_err(),
            VoprfIssueError::TooManyTokens { max: 2 }
        );
        // One evaluated element swapped: the batch's proof no longer verifies, and no token
        // comes out.
        let mut swapped = theirs.clone();
        swapped.evaluated_msgs.swap(0, 1);
        assert_eq!(
            pending.finalize(&swapped.encode()).unwrap_err(),
            VoprfClientError::InvalidProof,
            "{what}"
        );

        // Redeemer: each token once.
        let redeemer = Redeemer::new(Verifier::new(keys), Arc::new(MemoryStore::new(1000)));
        let encoded = challenge.encode();
        for token in &tokens {
            redeemer.redeem(token, &[&encoded], NOW).unwrap();
            assert_eq!(
                redeemer.redeem(token, &[&encoded], NOW).unwrap_err(),
                RedeemError::AlreadySpent
            );
        }
    }
}

#[test]
fn amortized_p384_vectors() {
    amortized("batched-amortized_p384_rs.json", TokenType::VoprfP384);
}

#[test]
fn amortized_ristretto255_vectors() {
    amortized(
        "batched-amortized_ristretto255_rs.json",
        TokenType::VoprfRistretto255,
    );
}

#[test]
fn generic_vectors() {
    let all = vectors("batched-generic_rs.json");
    assert_eq!(all.len(), 3);
    for (i, v) in all.iter().enumerate() {
        let what = format!("generic #{i}");
        let request = hex_field(v, "token_request");
        let response = hex_field(v, "token_response");
        let decoded = GenericBatchTokenRequest::decode(&request, 100).unwrap();
        assert_eq!(decoded.encode(), request, "{what}: request layout");
        let theirs = GenericBatchTokenResponse::decode(&response, 100).unwrap();
        assert_eq!(theirs.encode(), response, "{what}: response layout");

        let mut set = KeySet::new(0);
        let mut entries = Vec::new();
        let mut challenges = Vec::new();
        let mut tokens = Vec::new();
        for e in v["issuance"].as_array().unwrap() {
            let challenge = TokenChallenge::decode(&hex_field(e, "token_challenge")).unwrap();
            let nonce = array(&hex_field(e, "nonce"));
            let validity = KeyValidity::new(0, u64::MAX).unwrap();
            let entry = match e["token_type"].as_str().unwrap() {
                "0002" => {
                    let key = IssuerKey::from_pem(&hex_field(e, "sk_s")).unwrap();
                    assert_eq!(key.public_key().spki(), hex_field(e, "pk_s").as_slice());
                    let public = key.public_key().clone();
                    if set.get(public.token_key_id()).is_none() {
                        set.insert_issuer_key(key, validity).unwrap();
                    }
                    PendingEntry::BlindRsa(Box::new(
                        Client::new(public)
                            .request_with(
                                &challenge,
                                &nonce,
                                &array(&hex_field(e, "salt")),
                                &hex_field(e, "blind"),
                            )
                            .unwrap(),
                    ))
                }
                t => {
                    let token_type = if t == "0001" {
                        TokenType::VoprfP384
                    } else {
                        TokenType::VoprfRistretto255
                    };
                    let key =
                        VoprfIssuerKey::from_scalar(token_type, &hex_field(e, "sk_s")).unwrap();
                    assert_eq!(key.public_key().bytes(), hex_field(e, "pk_s").as_slice());
                    let public = key.public_key().clone();
                    if set.voprf_get(public.token_key_id()).is_none() {
                        set.insert_voprf_key(key, validity).unwrap();
                    }
                    PendingEntry::Voprf(Box::new(
                        VoprfClient::new(public)
                            .request_with(&challenge, &nonce, &hex_field(e, "blind"))
                            .unwrap(),
                    ))
                }
            };
            entries.push(entry);
            challenges.push(challenge.encode());
            tokens.push(hex_field(e, "token"));
        }
        // Client: the entries' nonces and blinds reproduce the batch; its response finalizes
        // into every entry's token.
        let pending = PendingGenericBatch::new(entries);
        assert_eq!(pending.request().encode(), request, "{what}: token_request");
        let finalized: Vec<Vec<u8>> = pending
            .finalize(&response)
            .unwrap()
            .into_iter()
            .map(|t| t.unwrap().encode())
            .collect();
        assert_eq!(finalized, tokens, "{what}: tokens");

        // Issuer: type 2 entries are deterministic (the same signatures), VOPRF ones the same
        // evaluated element with a fresh proof; all of it finalizes into the same tokens, on one
        // thread or two.
        let keys = Arc::new(set);
        for threads in [1, 2] {
            let ours = issue_generic(&keys, &decoded, NOW, threads);
            assert_eq!(ours.token_responses.len(), tokens.len());
            for (mine, theirs) in ours.token_responses.iter().zip(&theirs.token_responses) {
                let ((t1, a), (t2, b)) = (mine.as_ref().unwrap(), theirs.as_ref().unwrap());
                assert_eq!(t1, t2);
                match t1.voprf_suite() {
                    None => assert_eq!(a, b, "{what}: blind signature"),
                    Some(s) => assert_eq!(a[..s.element_len()], b[..s.element_len()]),
                }
            }
            let again: Vec<Vec<u8>> = pending
                .finalize(&ours.encode())
                .unwrap()
                .into_iter()
                .map(|t| t.unwrap().encode())
                .collect();
            assert_eq!(again, tokens, "{what}: ours finalizes ({threads} threads)");
        }

        // An entry the issuer cannot serve (a key it does not hold) is absent, the others are
        // issued: the partial answer.
        let mut partial = decoded.clone();
        partial.token_requests[0].truncated_token_key_id ^= 0xff;
        let ours = issue_generic(&keys, &partial, NOW, 2);
        assert!(ours.token_responses[0].is_none(), "{what}");
        assert!(ours.token_responses[1..].iter().all(Option::is_some));

        // Redeemer: every token once, whatever its type.
        let redeemer = Redeemer::new(Verifier::new(keys), Arc::new(MemoryStore::new(1000)));
        for (token, challenge) in tokens.iter().zip(&challenges) {
            redeemer.redeem(token, &[challenge], NOW).unwrap();
            assert_eq!(
                redeemer.redeem(token, &[challenge], NOW).unwrap_err(),
                RedeemError::AlreadySpent
            );
        }
    }
}

#[test]
fn malformed_batches_are_refused_with_their_reason() {
    let v = &vectors("batched-generic_rs.json")[0];
    let request = hex_field(v, "token_request");
    let response = hex_field(v, "token_response");
    // Trailing bytes, a truncated list, a length in a longer encoding than needed.
    let mut trailing = request.clone();
    trailing.push(0);
    assert!(matches!(
        GenericBatchTokenRequest::decode(&trailing, 100),
        Err(BatchError::TrailingBytes { .. })
    ));
    assert!(matches!(
        GenericBatchTokenRequest::decode(&request[..request.len() - 1], 100),
        Err(BatchError::Truncated { .. })
    ));
    let mut longer = vec![0x80, 0x00];
    longer.extend_from_slice(&request);
    longer[2] &= 0x3f;
    assert!(matches!(
        GenericBatchTokenRequest::decode(&longer, 100),
        Err(BatchError::NonMinimalLength { .. })
    ));
    // An entry of an unknown type cannot be delimited: the whole batch is malformed.
    let mut unknown = request.clone();
    unknown[3] = 0x07;
    assert_eq!(
        GenericBatchTokenRequest::decode(&unknown, 100).unwrap_err(),
        BatchError::UnsupportedTokenType(0x0007)
    );
    // More entries than allowed, and none at all.
    assert_eq!(
        GenericBatchTokenRequest::decode(&request, 1).unwrap_err(),
        BatchError::TooManyTokens { max: 1 }
    );
    assert_eq!(
        GenericBatchTokenRequest::decode(&[0], 100).unwrap_err(),
        BatchError::Empty
    );
    // A presence octet that is neither 0 nor 1.
    let mut presence = response.clone();
    presence[2] = 2;
    assert_eq!(
        GenericBatchTokenResponse::decode(&presence, 100).unwrap_err(),
        BatchError::BadPresence { index: 0, value: 2 }
    );
    // An amortized request whose list is not a whole number of elements, or of type 2.
    let a = &vectors("batched-amortized_p384_rs.json")[0];
    let amortized = hex_field(a, "token_request");
    let mut cut = amortized[..3].to_vec();
    privacypass_core::batch::encode_varint(48, &mut cut);
    cut.extend_from_slice(&[2; 48]);
    assert!(matches!(
        AmortizedBatchTokenRequest::decode(&cut, 100),
        Err(BatchError::PartialEntry { .. })
    ));
    let mut rsa = amortized.clone();
    rsa[1] = 2;
    assert_eq!(
        AmortizedBatchTokenRequest::decode(&rsa, 100).unwrap_err(),
        BatchError::UnsupportedTokenType(2)
    );
}
