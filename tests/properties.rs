//! Property tests: round trips, single-byte corruption, and decoders on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use privacypass_core::header::{parse_authorization, parse_www_authenticate};
use privacypass_core::wire::TokenType;
use privacypass_core::{
    Client, Issuer, IssuerKey, KeySet, KeyValidity, PublicKey, Token, TokenChallenge, TokenRequest,
    TokenResponse, Verifier,
};
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000;

struct Fixture {
    keys: Arc<KeySet>,
    challenge: Vec<u8>,
    token: Vec<u8>,
}

/// One key and one valid token, made once for all cases.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut set = KeySet::new(0);
        let key = set
            .generate(KeyValidity::new(0, u64::MAX).unwrap())
            .unwrap();
        let keys = Arc::new(set);
        let challenge =
            TokenChallenge::new(2, b"issuer.example", &[9; 32], b"origin.example").unwrap();
        let pending = Client::new(key.public_key().clone())
            .request(&challenge)
            .unwrap();
        let response = Issuer::new(keys.clone())
            .issue_request(&pending.request().encode(), NOW)
            .unwrap();
        let token = pending.finalize(&response.encode()).unwrap().encode();
        Fixture {
            keys,
            challenge: challenge.encode(),
            token,
        }
    })
}

fn challenge_strategy() -> impl Strategy<Value = TokenChallenge> {
    (
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 1..64),
        prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 32..=32)],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(t, issuer, ctx, origin)| {
            TokenChallenge::new(t, &issuer, &ctx, &origin).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn challenge_round_trips(c in challenge_strategy()) {
        prop_assert_eq!(TokenChallenge::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn request_and_token_round_trip(
        truncated in any::<u8>(),
        blinded in prop::collection::vec(any::<u8>(), 256..=256),
        nonce in any::<[u8; 32]>(),
        digest in any::<[u8; 32]>(),
        key_id in any::<[u8; 32]>(),
    ) {
        let req = TokenRequest { token_type: TokenType::BlindRsa2048, truncated_token_key_id: truncated, blinded_msg: blinded.clone() };
        prop_assert_eq!(TokenRequest::decode(&req.encode()).unwrap(), req);
        let token = Token { token_type: TokenType::BlindRsa2048, nonce, challenge_digest: digest, token_key_id: key_id, authenticator: blinded };
        prop_assert_eq!(Token::decode(&token.encode()).unwrap(), token);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = TokenChallenge::decode(&bytes);
        let _ = TokenRequest::decode(&bytes);
        let _ = Token::decode(&bytes);
        let _ = TokenResponse::decode(TokenType::BlindRsa2048, &bytes);
        let _ = PublicKey::from_spki(&bytes);
        let _ = IssuerKey::from_pem(&bytes);
        let f = fixture();
        let _ = Verifier::new(f.keys.clone()).verify(&bytes, &[], NOW);
        let _ = Issuer::new(f.keys.clone()).issue_request(&bytes, NOW);
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_www_authenticate(&text);
        let _ = parse_authorization(&text);
    }

    #[test]
    fn header_parsers_never_panic(text in "[ -~]{0,300}") {
        let _ = parse_www_authenticate(&text);
        let _ = parse_authorization(&text);
    }

    #[test]
    fn every_single_byte_change_fails_verification(delta in 1u8..=255) {
        let f = fixture();
        let verifier = Verifier::new(f.keys.clone());
        prop_assert!(verifier.verify(&f.token, &[&f.challenge], NOW).is_ok());
        for i in 0..f.token.len() {
            let mut bad = f.token.clone();
            bad[i] ^= delta;
            prop_assert!(verifier.verify(&bad, &[&f.challenge], NOW).is_err(), "byte {} ^ {:#x} verified", i, delta);
        }
    }
}
