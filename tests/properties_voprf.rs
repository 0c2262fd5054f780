//! Property tests of the privately verifiable token types (0x0001 VOPRF P-384, 0x0005 VOPRF
//! ristretto255): issuance round trips, decoders on arbitrary input, and single-bit corruption.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use privacypass_core::wire::TokenType;
use privacypass_core::{
    KeySet, KeyValidity, MemoryStore, RedeemError, Redeemer, Token, TokenChallenge, TokenRequest,
    Verifier, VoprfClient, VoprfIssuer, VoprfIssuerKey, VoprfPublicKey, VoprfTokenResponse,
};
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000;
const TYPES: [TokenType; 2] = [TokenType::VoprfP384, TokenType::VoprfRistretto255];

struct Fixture {
    keys: Arc<KeySet>,
    /// Per type: the key, an encoded challenge and a valid token for it.
    tokens: Vec<(Arc<VoprfIssuerKey>, Vec<u8>, Vec<u8>)>,
}

/// One key of each VOPRF type in one key set, and one valid token each, made once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut set = KeySet::new(0);
        let validity = KeyValidity::new(0, u64::MAX).unwrap();
        let keys: Vec<_> = TYPES
            .iter()
            .map(|t| set.generate_voprf(*t, validity).unwrap())
            .collect();
        let set = Arc::new(set);
        let issuer = VoprfIssuer::new(set.clone());
        let tokens = keys
            .into_iter()
            .map(|key| {
                let challenge = TokenChallenge::new(
                    key.token_type().value(),
                    b"issuer.example",
                    &[9; 32],
                    b"origin.example",
                )
                .unwrap();
                let pending = VoprfClient::new(key.public_key().clone())
                    .request(&challenge)
                    .unwrap();
                let response = issuer
                    .issue_request(&pending.request().encode(), NOW)
                    .unwrap();
                let token = pending.finalize(&response.encode()).unwrap().encode();
                (key, challenge.encode(), token)
            })
            .collect();
        Fixture { keys: set, tokens }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn issue_finalize_redeem_once(
        which in 0usize..2,
        issuer_name in prop::collection::vec(any::<u8>(), 1..64),
        context in prop_oneof![Just(vec![]), prop::collection::vec(any::<u8>(), 32..=32)],
        origin in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let f = fixture();
        let (key, _, _) = &f.tokens[which];
        let challenge =
            TokenChallenge::new(key.token_type().value(), &issuer_name, &context, &origin).unwrap();
        let pending = VoprfClient::new(key.public_key().clone()).request(&challenge).unwrap();
        let request = pending.request().encode();
        prop_assert_eq!(TokenRequest::decode(&request).unwrap(), pending.request().clone());
        let response = VoprfIssuer::new(f.keys.clone()).issue_request(&request, NOW).unwrap();
        prop_assert_eq!(
            VoprfTokenResponse::decode(key.token_type(), &response.encode()).unwrap(),
            response.clone()
        );
        let token = pending.finalize(&response.encode()).unwrap();
        prop_assert_eq!(token.authenticator.len(), key.token_type().nk());
        let bytes = token.encode();
        prop_assert_eq!(Token::decode(&bytes).unwrap(), token);
        let redeemer = Redeemer::new(Verifier::new(f.keys.clone()), Arc::new(MemoryStore::new(100)));
        let encoded = challenge.encode();
        prop_assert!(redeemer.redeem(&bytes, &[&encoded], NOW).is_ok());
        prop_assert_eq!(
            redeemer.redeem(&bytes, &[&encoded], NOW).unwrap_err(),
            RedeemError::AlreadySpent
        );
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let f = fixture();
        for token_type in TYPES {
            let _ = VoprfTokenResponse::decode(token_type, &bytes);
            let _ = VoprfPublicKey::from_bytes(token_type, &bytes);
            let _ = VoprfIssuerKey::from_scalar(token_type, &bytes);
        }
        let _ = VoprfTokenResponse::decode(TokenType::BlindRsa2048, &bytes);
        let _ = VoprfIssuerKey::from_pem(&bytes);
        let _ = TokenRequest::decode(&bytes);
        let _ = Token::decode(&bytes);
        let _ = VoprfIssuer::new(f.keys.clone()).issue_request(&bytes, NOW);
        let redeemer = Redeemer::new(Verifier::new(f.keys.clone()), Arc::new(MemoryStore::new(100)));
        let _ = redeemer.verify(&bytes, &[], NOW);
        for (key, challenge, _) in &f.tokens {
            let challenge = TokenChallenge::decode(challenge).unwrap();
            let pending = VoprfClient::new(key.public_key().clone()).request(&challenge).unwrap();
            prop_assert!(pending.finalize(&bytes).is_err());
        }
    }

    #[test]
    fn a_blinded_element_of_arbitrary_bytes_is_refused_or_evaluated(
        which in 0usize..2,
        element in prop::collection::vec(any::<u8>(), 49..=49),
    ) {
        let f = fixture();
        let (key, _, _) = &f.tokens[which];
        let token_type = key.token_type();
        let len = if token_type == TokenType::VoprfP384 { 49 } else { 32 };
        let mut request = token_type.value().to_be_bytes().to_vec();
        request.push(key.public_key().truncated_token_key_id());
        request.extend_from_slice(&element[..len]);
        // Most bytes are not a point: refused with 422; never a panic.
        if let Err(e) = VoprfIssuer::new(f.keys.clone()).issue_request(&request, NOW) {
            prop_assert_eq!(e.code(), privacypass_core::ErrorCode::UnprocessableBlindedToken);
        }
    }

    #[test]
    fn a_flipped_bit_in_a_token_is_refused(which in 0usize..2, bit in 0usize..(162 * 8)) {
        let f = fixture();
        let (_, challenge, token) = &f.tokens[which];
        let bit = bit % (token.len() * 8);
        let redeemer = Redeemer::new(Verifier::new(f.keys.clone()), Arc::new(MemoryStore::new(100)));
        prop_assert!(redeemer.verify(token, &[challenge], NOW).is_ok());
        let mut bad = token.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(redeemer.verify(&bad, &[challenge], NOW).is_err(), "bit {} verified", bit);
    }
}

#[test]
fn every_single_bit_flip_of_both_tokens_is_refused() {
    let f = fixture();
    let redeemer = Redeemer::new(
        Verifier::new(f.keys.clone()),
        Arc::new(MemoryStore::new(100)),
    );
    for (_, challenge, token) in &f.tokens {
        for bit in 0..token.len() * 8 {
            let mut bad = token.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                redeemer.verify(&bad, &[challenge], NOW).is_err(),
                "bit {bit}"
            );
            assert!(
                redeemer.verify(&bad, &[], NOW).is_err(),
                "bit {bit}, unbound"
            );
        }
    }
}
