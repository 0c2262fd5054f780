//! The published vectors of the privately verifiable token types, end to end through the public
//! API: RFC 9578 type 0x0001 (VOPRF P-384) and the batched-tokens implementation's vectors of
//! types 0x0001 and 0x0005 (VOPRF ristretto255), one token each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{array, hex_field, vectors};
use privacypass_core::wire::TokenType;
use privacypass_core::{
    KeySet, KeyValidity, MemoryStore, RedeemError, Redeemer, Token, TokenChallenge, TokenRequest,
    Verifier, VoprfClient, VoprfIssuer, VoprfIssuerKey, VoprfTokenResponse,
};

const NOW: u64 = 1_700_000_000;

/// Runs one vector: `sk` and `pk` name its key fields. Returns nothing; panics with `what`.
fn run(v: &serde_json::Value, sk: &str, pk: &str, token_type: TokenType, what: &str) {
    let key = VoprfIssuerKey::from_scalar(token_type, &hex_field(v, sk)).unwrap();
    let public = key.public_key().clone();
    assert_eq!(public.bytes(), hex_field(v, pk).as_slice(), "{what}: pkS");
    assert_eq!(
        public.token_key_id(),
        &privacypass_core::wire::digest_of_encoded(&hex_field(v, pk)),
        "{what}: token_key_id = SHA-256(pkS)"
    );
    assert_eq!(key.scalar_bytes().as_slice(), hex_field(v, sk), "{what}");
    // The key's file form round-trips.
    let again = VoprfIssuerKey::from_pem(&key.to_pem()).unwrap();
    assert_eq!(again.public_key().bytes(), public.bytes(), "{what}: PEM");

    let mut set = KeySet::new(0);
    set.insert_voprf_key(key, KeyValidity::new(0, u64::MAX).unwrap())
        .unwrap();
    let keys = Arc::new(set);

    let request = hex_field(v, "token_request");
    let response = hex_field(v, "token_response");
    let token_bytes = hex_field(v, "token");
    let decoded = TokenRequest::decode(&request).unwrap();
    assert_eq!(decoded.token_type, token_type, "{what}");
    assert_eq!(
        decoded.truncated_token_key_id,
        public.truncated_token_key_id(),
        "{what}: truncated id is the last byte"
    );

    // Client: the vector's nonce and blind reproduce the request, and the vector's response
    // finalizes into the vector's token.
    let challenge = TokenChallenge::decode(&hex_field(v, "token_challenge")).unwrap();
    let client = VoprfClient::new(public.clone());
    let pending = client
        .request_with(
            &challenge,
            &array(&hex_field(v, "nonce")),
            &hex_field(v, "blind"),
        )
        .unwrap();
    assert_eq!(pending.request().encode(), request, "{what}: token_request");
    let token = pending.finalize(&response).unwrap();
    assert_eq!(token.encode(), token_bytes, "{what}: token");
    assert_eq!(Token::decode(&token_bytes).unwrap(), token, "{what}");

    // Issuer: the same evaluated element; the proof is fresh, differs, and verifies (the client
    // finalizes it into the same token).
    let issuer = VoprfIssuer::new(keys.clone());
    let ours = issuer.issue_request(&request, NOW).unwrap();
    let theirs = VoprfTokenResponse::decode(token_type, &response).unwrap();
    assert_eq!(
        ours.evaluate_msg, theirs.evaluate_msg,
        "{what}: evaluate_msg"
    );
    assert_ne!(
        ours.evaluate_proof, theirs.evaluate_proof,
        "{what}: fresh proof"
    );
    assert_eq!(
        pending.finalize(&ours.encode()).unwrap().encode(),
        token_bytes,
        "{what}: our response finalizes into the vector's token"
    );
    let by_id = issuer
        .issue(public.token_key_id(), &decoded.blinded_msg, NOW)
        .unwrap();
    assert_eq!(by_id.evaluate_msg, theirs.evaluate_msg, "{what}");

    // Redeemer: accepts the vector's token once, bound to its challenge; refuses it the second
    // time, and refuses it bound to another challenge.
    let redeemer = Redeemer::new(Verifier::new(keys), Arc::new(MemoryStore::new(1000)));
    let encoded = challenge.encode();
    let other = TokenChallenge::new(token_type.value(), b"other.example", &[], b"")
        .unwrap()
        .encode();
    assert!(redeemer.verify(&token_bytes, &[&other], NOW).is_err());
    redeemer.redeem(&token_bytes, &[&encoded], NOW).unwrap();
    assert_eq!(
        redeemer.redeem(&token_bytes, &[&encoded], NOW).unwrap_err(),
        RedeemError::AlreadySpent,
        "{what}: second spend"
    );
}

#[test]
fn rfc9578_type1_voprf_p384_end_to_end() {
    let all = vectors("rfc9578-type1-voprf-p384.json");
    assert_eq!(all.len(), 5);
    for (i, v) in all.iter().enumerate() {
        run(
            v,
            "skS",
            "pkS",
            TokenType::VoprfP384,
            &format!("RFC 9578 vector {i}"),
        );
    }
}

#[test]
fn batched_private_p384_end_to_end() {
    let all = vectors("batched-private_p384_rs.json");
    assert_eq!(all.len(), 5);
    for (i, v) in all.iter().enumerate() {
        run(
            v,
            "sk_s",
            "pk_s",
            TokenType::VoprfP384,
            &format!("p384 vector {i}"),
        );
    }
}

#[test]
fn batched_private_ristretto255_end_to_end() {
    let all = vectors("batched-private_ristretto255_rs.json");
    assert_eq!(all.len(), 5);
    for (i, v) in all.iter().enumerate() {
        run(
            v,
            "sk_s",
            "pk_s",
            TokenType::VoprfRistretto255,
            &format!("ristretto255 vector {i}"),
        );
    }
}

#[test]
fn batched_tokens_draft_ristretto255_end_to_end() {
    let all = vectors("batched-tokens-draft-voprf-ristretto255.json");
    assert_eq!(all.len(), 10);
    for (i, v) in all.iter().enumerate() {
        run(
            v,
            "skS",
            "pkS",
            TokenType::VoprfRistretto255,
            &format!("draft vector {}", i + 1),
        );
    }
}

/// A P-384 key another issuer wrote with OpenSSL, as PKCS#8 and as SEC 1 PEM, is the same
/// type-0x0001 key: its public element is OpenSSL's compressed point, and a key of another
/// curve is refused.
#[test]
fn a_p384_key_in_openssl_pem_is_the_same_voprf_key() {
    use openssl::ec::{EcGroup, EcKey, PointConversionForm};
    let group = EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let compressed = ec
        .public_key()
        .to_bytes(&group, PointConversionForm::COMPRESSED, &mut ctx)
        .unwrap();
    let pkcs8 = openssl::pkey::PKey::from_ec_key(ec.clone())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let sec1 = ec.private_key_to_pem().unwrap();
    for pem in [&pkcs8, &sec1] {
        let key = VoprfIssuerKey::from_p384_pkcs8_pem(pem).unwrap();
        assert_eq!(key.token_type(), TokenType::VoprfP384);
        assert_eq!(key.public_key().bytes(), compressed.as_slice());
        assert_eq!(
            key.scalar_bytes().as_slice(),
            ec.private_key().to_vec_padded(48).unwrap().as_slice()
        );
    }
    let p256 = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let other = EcKey::generate(&p256)
        .unwrap()
        .private_key_to_pem()
        .unwrap();
    assert!(VoprfIssuerKey::from_p384_pkcs8_pem(&other).is_err());
    assert!(VoprfIssuerKey::from_p384_pkcs8_pem(b"-----BEGIN PRIVATE KEY-----\n").is_err());
}
