//! Every published vector in `tests/vectors/`, through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{array, hex_field, vectors};
use openssl::bn::{BigNum, BigNumContext};
use privacypass_core::header::{parse_www_authenticate, www_authenticate, PrivateTokenChallenge};
use privacypass_core::rsa_blind;
use privacypass_core::wire::{authenticator_input, DecodeError, TokenType};
use privacypass_core::{
    Client, Issuer, IssuerKey, KeySet, KeyValidity, PublicKey, Token, TokenChallenge, TokenRequest,
    Verifier,
};

const NOW: u64 = 1_700_000_000;

fn keyset_with(key: IssuerKey) -> Arc<KeySet> {
    let mut set = KeySet::new(0);
    set.insert_issuer_key(key, KeyValidity::new(0, u64::MAX).unwrap())
        .unwrap();
    Arc::new(set)
}

#[test]
fn rfc9578_type2_blind_rsa_end_to_end() {
    let all = vectors("rfc9578-type2-blind-rsa.json");
    assert_eq!(all.len(), 5);
    for (i, v) in all.iter().enumerate() {
        let pem = hex_field(v, "skS");
        let key = IssuerKey::from_pem(&pem).unwrap();
        let pk = key.public_key().clone();
        assert_eq!(pk.spki(), hex_field(v, "pkS").as_slice(), "vector {i}: pkS");
        let token_bytes = hex_field(v, "token");
        assert_eq!(
            &Token::encoded_token_key_id(&token_bytes).unwrap(),
            pk.token_key_id(),
            "vector {i}: token_key_id"
        );

        // Issuer: byte-identical response, through both issuance forms.
        let request = hex_field(v, "token_request");
        let response = hex_field(v, "token_response");
        let issuer = Issuer::new(keyset_with(key));
        assert_eq!(
            issuer.issue_request(&request, NOW).unwrap().encode(),
            response,
            "vector {i}"
        );
        assert_eq!(
            issuer.issue(pk.token_key_id(), &request, NOW).unwrap(),
            response
        );
        assert_eq!(
            issuer.issue(pk.token_key_id(), &request[3..], NOW).unwrap(),
            response
        );

        // Client: reproduces the request from nonce, salt and blind, then the token.
        let challenge = TokenChallenge::decode(&hex_field(v, "token_challenge")).unwrap();
        let client = Client::new(pk.clone());
        let pending = client
            .request_with(
                &challenge,
                &array(&hex_field(v, "nonce")),
                &array(&hex_field(v, "salt")),
                &hex_field(v, "blind"),
            )
            .unwrap();
        assert_eq!(
            pending.request().encode(),
            request,
            "vector {i}: token_request"
        );
        let token = pending.finalize(&response).unwrap();
        assert_eq!(token.encode(), token_bytes, "vector {i}: token");

        // Verifier: accepts it bound to its challenge, refuses it bound to another.
        let verifier = Verifier::new(issuer.keys().clone());
        let encoded_challenge = challenge.encode();
        verifier
            .verify(&token_bytes, &[&encoded_challenge], NOW)
            .unwrap();
        let other = TokenChallenge::new(2, b"other.example", &[], b"")
            .unwrap()
            .encode();
        assert!(verifier.verify(&token_bytes, &[&other], NOW).is_err());
    }
}

#[test]
fn rfc9578_type1_wire_formats() {
    // Token type 1 (VOPRF): its wire structures round-trip (issued and redeemed end to end in
    // tests/vectors_voprf.rs).
    for v in vectors("rfc9578-type1-voprf-p384.json") {
        let request = hex_field(&v, "token_request");
        let decoded = TokenRequest::decode(&request).unwrap();
        assert_eq!(decoded.token_type, TokenType::VoprfP384);
        assert_eq!(decoded.encode(), request);
        let token_bytes = hex_field(&v, "token");
        let token = Token::decode(&token_bytes).unwrap();
        assert_eq!(token.token_type, TokenType::VoprfP384);
        assert_eq!(token.encode(), token_bytes);
        let challenge = TokenChallenge::decode(&hex_field(&v, "token_challenge")).unwrap();
        assert_eq!(token.challenge_digest, challenge.digest());
        let key_id: [u8; 32] = openssl::sha::sha256(&hex_field(&v, "pkS"));
        assert_eq!(token.token_key_id, key_id);
        assert_eq!(decoded.truncated_token_key_id, key_id[31]);
    }
}

#[test]
fn rfc9474_blind_rsa_variants() {
    let mut ctx = BigNumContext::new().unwrap();
    for v in vectors("rfc9474-blind-rsa.json") {
        let name = v["name"].as_str().unwrap();
        let n_bytes = hex_field(&v, "n");
        // RFC 9474's vectors use a 4096-bit key; issuer keys are RSA-2048, so the primitives
        // are exercised directly.
        let key = IssuerKey::from_components(
            &n_bytes,
            &hex_field(&v, "e"),
            &hex_field(&v, "d"),
            &hex_field(&v, "p"),
            &hex_field(&v, "q"),
        );
        assert_eq!(
            key.unwrap_err(),
            privacypass_core::KeyError::WrongSize(4096),
            "{name}"
        );
        let big = |f: &str| BigNum::from_slice(&hex_field(&v, f)).unwrap();
        let rsa = privacypass_core::keys::rsa_from_components(
            &n_bytes,
            &hex_field(&v, "e"),
            &hex_field(&v, "d"),
            &hex_field(&v, "p"),
            &hex_field(&v, "q"),
        )
        .unwrap();
        // BlindSign is the same raw operation in every variant.
        assert_eq!(
            rsa_blind::blind_sign(&rsa, &n_bytes, &hex_field(&v, "blinded_msg")).unwrap(),
            hex_field(&v, "blind_sig"),
            "{name}"
        );
        if hex_field(&v, "salt").len() != rsa_blind::SALT_LEN {
            // The PSSZERO variants (no salt) are not used by Privacy Pass.
            continue;
        }
        // Blind with r = inv^-1, unblind, verify: the whole protocol, byte for byte.
        let n = big("n");
        let mut r = BigNum::new().unwrap();
        r.mod_inverse(&big("inv"), &n, &mut ctx).unwrap();
        let e_bytes = hex_field(&v, "e");
        let input_msg = hex_field(&v, "input_msg");
        let salt = array(&hex_field(&v, "salt"));
        let (blinded, unblinder) =
            rsa_blind::blind(&n_bytes, &e_bytes, &input_msg, &salt, &r.to_vec()).unwrap();
        assert_eq!(blinded, hex_field(&v, "blinded_msg"), "{name}");
        if v.get("encoded_msg").is_some() {
            assert_eq!(
                rsa_blind::emsa_pss_encode(&input_msg, &salt, n.num_bits() as usize).unwrap(),
                hex_field(&v, "encoded_msg"),
                "{name}"
            );
        }
        let sig = rsa_blind::unblind(&n_bytes, &hex_field(&v, "blind_sig"), &unblinder).unwrap();
        assert_eq!(sig, hex_field(&v, "sig"), "{name}");
        let parsed = aws_lc_rs::signature::RsaPublicKeyComponents {
            n: &n_bytes[..],
            e: &e_bytes[..],
        }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PSS_2048_8192_SHA384)
        .unwrap();
        rsa_blind::verify(&parsed, &n_bytes, &input_msg, &sig).unwrap();
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(rsa_blind::verify(&parsed, &n_bytes, &input_msg, &bad).is_err());
    }
}

#[test]
fn rfc9577_challenges_and_authenticator_inputs() {
    let all = vectors("rfc9577-challenge-and-redemption.json");
    assert_eq!(all.len(), 6);
    for v in &all {
        let expected = hex_field(v, "token_authenticator_input");
        let token_type = u16::from_be_bytes(array(&hex_field(v, "token_type")));
        if v.get("issuer_name").is_none() {
            // The grease token type: a well-formed token of a type nobody issues.
            assert_eq!(token_type, 0);
            assert_eq!(
                Token::decode(&expected),
                Err(DecodeError::UnsupportedTokenType(0))
            );
            continue;
        }
        let challenge = TokenChallenge::new(
            token_type,
            &hex_field(v, "issuer_name"),
            &hex_field(v, "redemption_context"),
            &hex_field(v, "origin_info"),
        )
        .unwrap();
        assert_eq!(
            TokenChallenge::decode(&challenge.encode()).unwrap(),
            challenge
        );
        let texts: Vec<String> = v["origin_info_text"]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(challenge.origins(), texts);
        let input = authenticator_input(
            token_type,
            &array(&hex_field(v, "nonce")),
            &challenge.digest(),
            &array(&hex_field(v, "token_key_id")),
        );
        assert_eq!(input.to_vec(), expected, "vector {}", v["test_vector"]);
    }
}

#[test]
fn rfc9577_www_authenticate_headers() {
    for v in vectors("rfc9577-headers.json") {
        let header = v["WWW-Authenticate"].as_str().unwrap();
        let parsed = parse_www_authenticate(header).unwrap();
        let count = (0..)
            .take_while(|i| v.get(format!("token-type-{i}")).is_some())
            .count();
        assert!(count > 0);
        assert_eq!(parsed.len(), count);
        for (i, challenge) in parsed.iter().enumerate() {
            assert_eq!(
                u64::from(challenge.challenge.token_type),
                v[format!("token-type-{i}")].as_u64().unwrap()
            );
            assert_eq!(
                challenge.token_key,
                hex_field(&v, &format!("token-key-{i}"))
            );
            assert_eq!(
                challenge.challenge_bytes,
                hex_field(&v, &format!("token-challenge-{i}"))
            );
            assert_eq!(challenge.max_age, v[format!("max-age-{i}")].as_u64());
        }
        // What we produce parses back to the same challenges.
        let produced: Vec<PrivateTokenChallenge> = parsed
            .iter()
            .map(|c| {
                PrivateTokenChallenge::new(c.challenge.clone(), c.token_key.clone(), c.max_age)
            })
            .collect();
        assert_eq!(
            parse_www_authenticate(&www_authenticate(&produced)).unwrap(),
            parsed
        );
        // The type-2 token-key is the issuer's PSS SPKI.
        let spki = PublicKey::from_spki(&parsed[0].token_key).unwrap();
        assert_eq!(spki.spki(), parsed[0].token_key.as_slice());
    }
}
