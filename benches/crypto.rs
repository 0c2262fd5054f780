//! The cost of the whole service: the issuer's private operation and token verification, one
//! core each, beside the reference implementation, for Blind RSA and both VOPRF types.
//! `make bench` prints them next to `openssl speed rsa2048` and `openssl speed ecdhp384`
//! measured in the same run.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use blind_rsa_signatures::{Deterministic, Sha384, PSS};
use criterion::{criterion_group, criterion_main, Criterion};
use privacypass_core::private_token::{VoprfClient, VoprfIssuer};
use privacypass_core::{Client, Issuer, KeySet, KeyValidity, TokenChallenge, TokenType, Verifier};

const NOW: u64 = 1_700_000_000;

fn crypto(c: &mut Criterion) {
    let mut set = KeySet::new(0);
    let key = set
        .generate(KeyValidity::new(0, u64::MAX).expect("validity"))
        .expect("key");
    let keys = Arc::new(set);
    let issuer = Issuer::new(keys.clone());
    let verifier = Verifier::new(keys.clone());
    let challenge = TokenChallenge::new(2, b"issuer.example", &[], b"").expect("challenge");
    let client = Client::new(key.public_key().clone());
    let pending = client.request(&challenge).expect("request");
    let request = pending.request().encode();
    let response = issuer.issue_request(&request, NOW).expect("issue");
    let token = pending
        .finalize(&response.encode())
        .expect("finalize")
        .encode();

    // OpenSSL's own RSA-2048 sign and verify (PKCS#1 v1.5 over SHA-256, what `openssl speed
    // rsa2048` measures), next to ours in the same process, so that host noise affects both.
    let ossl =
        openssl::pkey::PKey::private_key_from_pem(&key.to_pkcs8_pem().expect("pem")).expect("pkey");
    let ossl_sig = {
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &ossl)
            .expect("signer");
        signer.sign_oneshot_to_vec(&[7u8; 32]).expect("sign")
    };

    let mut group = c.benchmark_group("crypto");
    group.bench_function("openssl_sign", |b| {
        b.iter(|| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &ossl)
                    .expect("signer");
            signer
                .sign_oneshot_to_vec(black_box(&[7u8; 32]))
                .expect("sign")
        })
    });
    group.bench_function("issuer_sign", |b| {
        b.iter(|| key.blind_sign(black_box(&request[3..])).expect("sign"))
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&token), &[], NOW)
                .expect("verify")
        })
    });
    group.bench_function("openssl_verify", |b| {
        b.iter(|| {
            let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &ossl)
                .expect("verifier");
            v.verify_oneshot(black_box(&ossl_sig), &[7u8; 32])
                .expect("verify")
        })
    });
    // Each library's version of the other's operation, for the choice of backends (README,
    // "Cryptography and timing safety"): PSS-SHA384 verification of the same token in OpenSSL,
    // and aws-lc's RSA-2048 private operation. aws-lc-rs has no raw private operation (BlindSign
    // needs one), so its PSS-SHA384 sign stands for it: the same CRT exponentiation plus an
    // encoding that costs microseconds.
    let authenticator_input = &token[..98];
    let authenticator = &token[98..];
    group.bench_function("pss_verify", |b| {
        b.iter(|| {
            key.public_key()
                .verify(black_box(authenticator_input), authenticator)
                .expect("verify")
        })
    });
    let ossl_public = {
        let n = openssl::bn::BigNum::from_slice(key.public_key().modulus()).expect("n");
        let e = openssl::bn::BigNum::from_slice(key.public_key().exponent()).expect("e");
        let rsa = openssl::rsa::Rsa::from_public_components(n, e).expect("rsa");
        openssl::pkey::PKey::from_rsa(rsa).expect("pkey")
    };
    group.bench_function("openssl_pss_verify", |b| {
        b.iter(|| {
            let sha384 = openssl::hash::MessageDigest::sha384();
            let mut v = openssl::sign::Verifier::new(sha384, &ossl_public).expect("verifier");
            v.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
                .expect("pss");
            v.set_rsa_mgf1_md(sha384).expect("mgf1");
            v.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(48))
                .expect("salt length");
            assert!(v
                .verify_oneshot(black_box(authenticator), authenticator_input)
                .expect("verify"));
        })
    });
    let aws_lc_key =
        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&ossl.private_key_to_pkcs8().expect("pkcs8"))
            .expect("aws-lc key");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    group.bench_function("aws_lc_pss_sign", |b| {
        let mut sig = vec![0u8; aws_lc_key.public_modulus_len()];
        b.iter(|| {
            aws_lc_key
                .sign(
                    &aws_lc_rs::signature::RSA_PSS_SHA384,
                    &rng,
                    black_box(authenticator_input),
                    &mut sig,
                )
                .expect("sign")
        })
    });
    group.bench_function("client_request", |b| {
        b.iter(|| client.request(black_box(&challenge)).expect("request"))
    });
    group.bench_function("client_finalize", |b| {
        b.iter(|| {
            pending
                .finalize(black_box(&response.encode()))
                .expect("finalize")
        })
    });

    // The reference implementation (pure Rust) on the same key and input.
    let pem = key.to_pkcs8_pem().expect("pem");
    let reference = blind_rsa_signatures::SecretKey::<Sha384, PSS, Deterministic>::from_pem(
        std::str::from_utf8(&pem).expect("utf-8"),
    )
    .expect("reference key");
    let reference_pk = reference.public_key().expect("reference public key");
    let sig = blind_rsa_signatures::Signature(token[98..].to_vec());
    group.bench_function("reference_blind_sign", |b| {
        b.iter(|| {
            reference
                .blind_sign(black_box(&request[3..]))
                .expect("sign")
        })
    });
    group.bench_function("reference_verify", |b| {
        b.iter(|| {
            reference_pk
                .verify(black_box(&sig), None, &token[..98])
                .expect("verify")
        })
    });

    // The privately verifiable types: the issuer's blind evaluation with its DLEQ proof, the
    // client's blinding and finalization (which verifies the proof), and the redeemer's check
    // with the private key; beside OpenSSL's P-384 ECDH (one scalar multiplication, what
    // `openssl speed ecdhp384` measures) in the same process.
    for (name, token_type) in [
        ("p384", TokenType::VoprfP384),
        ("r255", TokenType::VoprfRistretto255),
    ] {
        let mut set = KeySet::new(0);
        let key = set
            .generate_voprf(token_type, KeyValidity::new(0, u64::MAX).expect("validity"))
            .expect("key");
        let keys = Arc::new(set);
        let issuer = VoprfIssuer::new(keys.clone());
        let private_verifier = Verifier::new(keys);
        let challenge = TokenChallenge::new(token_type.value(), b"issuer.example", &[], b"")
            .expect("challenge");
        let client = VoprfClient::new(key.public_key().clone());
        let pending = client.request(&challenge).expect("request");
        let request = pending.request().encode();
        let response = issuer.issue_request(&request, NOW).expect("issue").encode();
        let token = pending.finalize(&response).expect("finalize").encode();
        group.bench_function(format!("voprf_{name}_issue"), |b| {
            b.iter(|| {
                issuer
                    .issue_request(black_box(&request), NOW)
                    .expect("issue")
            })
        });
        group.bench_function(format!("voprf_{name}_client_request"), |b| {
            b.iter(|| client.request(black_box(&challenge)).expect("request"))
        });
        group.bench_function(format!("voprf_{name}_client_finalize"), |b| {
            b.iter(|| pending.finalize(black_box(&response)).expect("finalize"))
        });
        group.bench_function(format!("voprf_{name}_verify"), |b| {
            b.iter(|| {
                private_verifier
                    .verify(black_box(&token), &[], NOW)
                    .expect("verify")
            })
        });
    }
    let p384 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).expect("group");
    let ours = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&p384).expect("key"))
        .expect("pkey");
    let peer = openssl::ec::EcKey::generate(&p384).expect("peer");
    let peer = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::from_public_key(&p384, peer.public_key()).expect("public"),
    )
    .expect("peer pkey");
    group.bench_function("openssl_ecdh_p384", |b| {
        b.iter(|| {
            let mut deriver = openssl::derive::Deriver::new(&ours).expect("deriver");
            deriver.set_peer(black_box(&peer)).expect("peer");
            deriver.derive_to_vec().expect("derive")
        })
    });
    group.finish();
}

/// Amortized batches of the VOPRF types (draft-ietf-privacypass-batched-tokens): one evaluation
/// per token and one proof per batch, issued and finalized, for batches of 10 and 100, beside
/// the single-token rows of `crypto` (`voprf_*_issue`, `voprf_*_client_finalize`).
fn batches(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    for (name, token_type) in [
        ("p384", TokenType::VoprfP384),
        ("r255", TokenType::VoprfRistretto255),
    ] {
        let mut set = KeySet::new(0);
        let key = set
            .generate_voprf(token_type, KeyValidity::new(0, u64::MAX).expect("validity"))
            .expect("key");
        let issuer = VoprfIssuer::new(Arc::new(set));
        let challenge = TokenChallenge::new(token_type.value(), b"issuer.example", &[], b"")
            .expect("challenge");
        let client = VoprfClient::new(key.public_key().clone());
        for n in [10, 100] {
            let pending = client.request_amortized(&challenge, n).expect("request");
            let request = pending.request().encode();
            let response = issuer
                .issue_amortized(&request, NOW, n)
                .expect("issue")
                .encode();
            group.bench_function(format!("voprf_{name}_amortized_issue_{n}"), |b| {
                b.iter(|| {
                    issuer
                        .issue_amortized(black_box(&request), NOW, n)
                        .expect("issue")
                })
            });
            group.bench_function(format!("voprf_{name}_amortized_finalize_{n}"), |b| {
                b.iter(|| pending.finalize(black_box(&response)).expect("finalize"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, crypto, batches);
criterion_main!(benches);
