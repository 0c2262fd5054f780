//! Differential tests against blind-rsa-signatures, the reference RFC 9474 implementation:
//! our issuer, client and verifier interoperate with it and produce identical bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use blind_rsa_signatures::{BlindRsa, Deterministic, Sha384, PSS};
use privacypass_core::IssuerKey;

type Reference = BlindRsa<Sha384, PSS, Deterministic>;
type RefSecretKey = blind_rsa_signatures::SecretKey<Sha384, PSS, Deterministic>;

fn pair() -> (IssuerKey, RefSecretKey) {
    let ours = IssuerKey::generate().unwrap();
    let pem = ours.to_pkcs8_pem().unwrap();
    let reference = RefSecretKey::from_pem(std::str::from_utf8(&pem).unwrap()).unwrap();
    (ours, reference)
}

#[test]
fn blind_sign_is_byte_identical_and_interoperates() {
    let _ = Reference::default();
    let (ours, reference) = pair();
    let ref_pk = reference.public_key().unwrap();
    assert_eq!(ref_pk.to_spki().unwrap(), ours.public_key().spki());
    let mut rng = blind_rsa_signatures::DefaultRng;
    for i in 0..8u8 {
        let msg = vec![i; 98];
        // Reference client, our issuer, reference finalize.
        let blinding = ref_pk.blind(&mut rng, &msg).unwrap();
        let ours_sig = ours.blind_sign(&blinding.blind_message).unwrap();
        let ref_sig = reference.blind_sign(&blinding.blind_message).unwrap();
        assert_eq!(ours_sig, ref_sig.0);
        let sig = ref_pk.finalize(&ref_sig, &blinding, &msg).unwrap();
        // Our verifier accepts the reference's signature; the reference accepts ours.
        ours.public_key().verify(&msg, &sig).unwrap();
        let mut salt = [0u8; 48];
        salt[0] = i;
        let (blinded, unblinder) = privacypass_core::rsa_blind::blind(
            ours.public_key().modulus(),
            ours.public_key().exponent(),
            &msg,
            &salt,
            &[7u8; 264],
        )
        .unwrap();
        let blind_sig = reference.blind_sign(&blinded).unwrap();
        let our_final = privacypass_core::rsa_blind::unblind(
            ours.public_key().modulus(),
            &blind_sig,
            &unblinder,
        )
        .unwrap();
        ref_pk
            .verify(&blind_rsa_signatures::Signature(our_final), None, &msg)
            .unwrap();
    }
}
