//! The C API's entry points that take caller bytes, called as C calls them (the `extern "C"`
//! functions of ffi/src, with valid pointers). The first byte picks the function, the second
//! the capacity of the output buffer, the rest are its arguments separated by the bytes FF 00;
//! in each argument, placeholders (`$SPKI`, `$TOKEN`, `$CHALLENGE`, `$RESPONSE`, ...) stand for
//! this process's issuer key and the token it issued (see `Fixture::start`).
//!
//! Checks, besides no panic (`PP_ERR_PANIC`): an output is written only on success and never
//! past its length; a short buffer answers `PP_ERR_BUFFER_TOO_SMALL` with the length needed,
//! and that length then succeeds; a token verifies, and redeems once, only if it is the token
//! issued here (bound to the challenge, when one is given); a pending token finalizes only with
//! the issuer's own response; what the issuer signs is the RSA signature of the blinded message
//! of a well-formed request naming its key; a challenge the client accepts makes a token that
//! verifies bound to it; encoders and parsers agree (challenge,
//! WWW-Authenticate, Authorization); a request made with the same randomness is the same.
#![no_main]

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use privacypass_core::batch::{
    AmortizedBatchTokenRequest, AmortizedBatchTokenResponse, GenericBatchTokenRequest,
    GenericBatchTokenResponse,
};
use privacypass_core::directory::IssuerDirectory;
use privacypass_core::header::{parse_authorization, parse_www_authenticate};
use privacypass_core::{
    b64, IssuerKey, PublicKey, Token, TokenChallenge, TokenRequest, TokenType, VoprfIssuerKey,
    VoprfPublicKey,
};
use privacypass_ffi::batch::*;
use privacypass_ffi::challenge::*;
use privacypass_ffi::client::*;
use privacypass_ffi::issuer::*;
use privacypass_ffi::keys::*;
use privacypass_ffi::redeem_response::pp_redeem_response_result;
use privacypass_ffi::result::{pp_result_http_status, pp_result_jsonrpc_code, pp_result_str};
use privacypass_ffi::token::*;
use privacypass_ffi::verifier::*;
use privacypass_ffi::{pp_result, PP_PUBLIC_KEY_LEN};

/// Handles and bytes made once per process through the C API.
struct Fixture {
    issuer: *mut pp_issuer,
    verifier: *mut pp_verifier,
    redeemer: *mut pp_redeemer,
    client: *mut pp_client,
    pending: *mut pp_pending_token,
    /// A generic batch of the one pending token above.
    generic: *mut pp_pending_generic_batch,
    public: PublicKey,
    spki: Vec<u8>,
    token: Vec<u8>,
    challenge: Vec<u8>,
    response: Vec<u8>,
    placeholders: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether the token was redeemed (it may be once).
    redeemed: AtomicBool,
}

// SAFETY: the handles are `Arc`-backed and documented as safe to share between threads.
unsafe impl Send for Fixture {}
// SAFETY: as above.
unsafe impl Sync for Fixture {}

fn ok(rc: pp_result, what: &str) {
    assert_eq!(rc, pp_result::PP_OK, "{what}");
}

/// An output of at most `cap` bytes from `call(out, cap, out_len)`, checking the buffer rules.
fn output(
    cap: usize,
    mut call: impl FnMut(*mut u8, usize, *mut usize) -> pp_result,
) -> Result<Vec<u8>, pp_result> {
    const GUARD: u8 = 0xa5;
    const UNSET: usize = usize::MAX;
    let mut buf = vec![GUARD; cap + 16];
    let mut len = UNSET;
    let out = if cap == 0 {
        null_mut()
    } else {
        buf.as_mut_ptr()
    };
    let rc = call(out, cap, &mut len);
    assert_ne!(rc, pp_result::PP_ERR_PANIC, "a panic inside the library");
    match rc {
        pp_result::PP_OK => {
            assert!(len <= cap, "wrote {len} bytes into {cap}");
            assert!(
                buf[len..].iter().all(|&b| b == GUARD),
                "wrote past the output's length"
            );
            buf.truncate(len);
            Ok(buf)
        }
        pp_result::PP_ERR_BUFFER_TOO_SMALL => {
            assert!(
                len != UNSET && len > cap,
                "too small for {cap} bytes, needing {len}"
            );
            assert!(
                buf.iter().all(|&b| b == GUARD),
                "wrote into a buffer too small"
            );
            // The length it asked for is enough (every output here is deterministic).
            let needed = len;
            let again = output(needed, call);
            assert!(
                again.as_ref().is_ok_and(|o| o.len() == needed),
                "the length asked for ({needed}) answered {again:?}"
            );
            again
        }
        rc => {
            assert_eq!(len, UNSET, "wrote the output length on failure ({rc:?})");
            assert!(
                buf.iter().all(|&b| b == GUARD),
                "wrote the output on failure ({rc:?})"
            );
            Err(rc)
        }
    }
}

fn pem_of_spki(spki: &[u8]) -> Vec<u8> {
    let body = b64::encode_std(spki);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem.into_bytes()
}

impl Fixture {
    fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::start)
    }

    fn start() -> Fixture {
        let key = IssuerKey::generate().expect("a key");
        let private_pem = key.to_pkcs8_pem().expect("its PEM").to_vec();
        // SAFETY: every pointer is valid for its call.
        unsafe {
            let mut issuer = null_mut();
            ok(
                pp_issuer_new_from_pem(private_pem.as_ptr().cast(), private_pem.len(), &mut issuer),
                "pp_issuer_new_from_pem",
            );
            let spki = output(4096, |o, c, l| pp_issuer_public_key(issuer, o, c, l)).expect("spki");
            let key_id =
                output(64, |o, c, l| pp_issuer_token_key_id(issuer, o, c, l)).expect("key id");
            let mut verifier = null_mut();
            ok(
                pp_verifier_new_from_spki(spki.as_ptr(), spki.len(), &mut verifier),
                "pp_verifier_new_from_spki",
            );
            let mut redeemer = null_mut();
            ok(
                pp_redeemer_new(verifier, c"memory:".as_ptr(), &mut redeemer),
                "pp_redeemer_new",
            );
            let mut client = null_mut();
            ok(
                pp_client_new(spki.as_ptr(), spki.len(), &mut client),
                "pp_client_new",
            );
            let name = b"issuer.example";
            let origin = b"origin.example";
            let challenge = output(4096, |o, c, l| {
                pp_challenge_encode(
                    2,
                    name.as_ptr().cast(),
                    name.len(),
                    [9u8; 32].as_ptr(),
                    32,
                    origin.as_ptr().cast(),
                    origin.len(),
                    o,
                    c,
                    l,
                )
            })
            .expect("a challenge");
            let mut pending = null_mut();
            ok(
                pp_client_request(client, challenge.as_ptr(), challenge.len(), &mut pending),
                "pp_client_request",
            );
            let request = output(4096, |o, c, l| pp_pending_token_request(pending, o, c, l))
                .expect("request");
            let response = output(4096, |o, c, l| {
                pp_issuer_issue(issuer, request.as_ptr(), request.len(), o, c, l)
            })
            .expect("a response");
            let token = output(4096, |o, c, l| {
                pp_pending_token_finalize(pending, response.as_ptr(), response.len(), o, c, l)
            })
            .expect("a token");
            let mut pendings = [pending.cast_const()];
            let mut generic = null_mut();
            ok(
                pp_pending_generic_batch_new(pendings.as_mut_ptr(), 1, &mut generic),
                "pp_pending_generic_batch_new",
            );
            let generic_request = output(4096, |o, c, l| {
                pp_pending_generic_batch_request(generic, o, c, l)
            })
            .expect("a generic request");
            let generic_response = output(4096, |o, c, l| {
                let mut issuers = [issuer.cast_const()];
                pp_issuer_issue_generic(
                    issuers.as_mut_ptr(),
                    1,
                    generic_request.as_ptr(),
                    generic_request.len(),
                    1,
                    1,
                    o,
                    c,
                    l,
                )
            })
            .expect("a generic response");
            let authorization = output(4096, |o, c, l| {
                pp_authorization_encode(token.as_ptr(), token.len(), o.cast(), c, l)
            })
            .expect("an Authorization value");
            let mut placeholders: Vec<(Vec<u8>, Vec<u8>)> = vec![
                (b"$SPKI".to_vec(), spki.clone()),
                (b"$SPKIB64".to_vec(), b64::encode_url(&spki).into_bytes()),
                (b"$PEM".to_vec(), pem_of_spki(&spki)),
                (b"$PRIVATEPEM".to_vec(), private_pem),
                (b"$KEYID".to_vec(), key_id),
                (b"$TOKEN".to_vec(), token.clone()),
                (b"$AUTHORIZATION".to_vec(), authorization),
                (b"$CHALLENGE".to_vec(), challenge.clone()),
                (b"$REQUEST".to_vec(), request.clone()),
                (
                    b"$BLINDED".to_vec(),
                    TokenRequest::decode(&request)
                        .expect("its request")
                        .blinded_msg,
                ),
                (b"$RESPONSE".to_vec(), response.clone()),
                (b"$GENERICREQUEST".to_vec(), generic_request),
                (b"$GENERICRESPONSE".to_vec(), generic_response),
            ];
            placeholders.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
            Fixture {
                issuer,
                verifier,
                redeemer,
                client,
                pending,
                generic,
                public: PublicKey::from_spki(&spki).expect("the issuer's key"),
                spki,
                token,
                challenge,
                response,
                placeholders,
                redeemed: AtomicBool::new(false),
            }
        }
    }
}

/// An input: the function, the output capacity and the arguments.
struct Input {
    function: u8,
    cap: usize,
    args: Vec<Vec<u8>>,
}

impl Input {
    fn parse(data: &[u8], fixture: &Fixture) -> Option<Input> {
        let [function, cap, rest @ ..] = data else {
            return None;
        };
        let mut args = Vec::new();
        let mut rest = rest;
        loop {
            match rest.windows(2).position(|w| w == [0xff, 0x00]) {
                Some(i) => {
                    args.push(privacypass_fuzz::expand(&rest[..i], &fixture.placeholders));
                    rest = &rest[i + 2..];
                }
                None => {
                    args.push(privacypass_fuzz::expand(rest, &fixture.placeholders));
                    break;
                }
            }
        }
        // Small capacities exercise the size query and the short-buffer answer.
        let cap = if *cap < 0x80 {
            usize::from(*cap) * 4
        } else {
            1 << 16
        };
        Some(Input {
            function: *function,
            cap,
            args,
        })
    }

    fn arg(&self, i: usize) -> &[u8] {
        self.args.get(i).map_or(&[], Vec::as_slice)
    }
}

/// `(ptr, len)` of an argument: NULL for an empty one (the C API's empty slice).
fn raw(bytes: &[u8]) -> (*const u8, usize) {
    if bytes.is_empty() {
        (null(), 0)
    } else {
        (bytes.as_ptr(), bytes.len())
    }
}

fn check_rc(rc: pp_result) -> pp_result {
    assert_ne!(rc, pp_result::PP_ERR_PANIC, "a panic inside the library");
    rc
}

fuzz_target!(|data: &[u8]| {
    let fixture = Fixture::get();
    let Some(input) = Input::parse(data, fixture) else {
        return;
    };
    // SAFETY: every pointer passed below is valid for its length, handles are live.
    unsafe { run(fixture, &input) }
});

unsafe fn new_verifier(
    rc: pp_result,
    verifier: *mut pp_verifier,
    fixture: &Fixture,
) -> Option<*mut pp_verifier> {
    check_rc(rc);
    if rc != pp_result::PP_OK {
        assert!(verifier.is_null(), "a handle written on failure");
        return None;
    }
    assert!(!verifier.is_null());
    // A verifier of any keys answers the token issued here without a panic.
    let (t, tl) = raw(&fixture.token);
    let verdict = check_rc(unsafe { pp_verifier_verify(verifier, t, tl, null(), 0) });
    assert!(
        matches!(
            verdict,
            pp_result::PP_OK | pp_result::PP_ERR_VERIFICATION_FAILED
        ),
        "a new verifier answered {verdict:?} for a well-formed token"
    );
    Some(verifier)
}

/// How many functions the first byte picks among.
const FUNCTIONS: u8 = 40;

unsafe fn run(fixture: &Fixture, input: &Input) {
    let a0 = input.arg(0);
    let a1 = input.arg(1);
    let (p0, l0) = raw(a0);
    let (p1, l1) = raw(a1);
    let cap = input.cap;
    match input.function % FUNCTIONS {
        0 => {
            let mut v = null_mut();
            let rc = unsafe { pp_verifier_new_from_spki(p0, l0, &mut v) };
            if let Some(v) = unsafe { new_verifier(rc, v, fixture) } {
                assert!(
                    PublicKey::from_spki(a0).is_ok(),
                    "a verifier of a key the core refuses"
                );
                if a0 == fixture.spki {
                    let (t, tl) = raw(&fixture.token);
                    ok(
                        unsafe { pp_verifier_verify(v, t, tl, null(), 0) },
                        "the issuer's token",
                    );
                }
                unsafe { pp_verifier_free(v) };
            }
        }
        1 => {
            let mut v = null_mut();
            let rc = unsafe { pp_verifier_new_from_pem(p0.cast(), l0, &mut v) };
            if let Some(v) = unsafe { new_verifier(rc, v, fixture) } {
                unsafe { pp_verifier_free(v) };
            }
        }
        2 => {
            let mut v = null_mut();
            let rc = unsafe { pp_verifier_new_from_directory(p0.cast(), l0, &mut v) };
            if let Some(v) = unsafe { new_verifier(rc, v, fixture) } {
                unsafe { pp_verifier_free(v) };
            }
        }
        3 => {
            let rc = check_rc(unsafe { pp_verifier_verify(fixture.verifier, p0, l0, p1, l1) });
            if rc == pp_result::PP_OK {
                verified(fixture, a0, a1);
            }
        }
        4 => {
            let rc = check_rc(unsafe {
                pp_verifier_verify_authorization(fixture.verifier, p0.cast(), l0, p1, l1)
            });
            if rc == pp_result::PP_OK {
                let text = std::str::from_utf8(a0).expect("verified a header that is not UTF-8");
                let token =
                    parse_authorization(text).expect("verified a header that does not parse");
                verified(fixture, &token, a1);
            }
        }
        5 => {
            let rc = check_rc(unsafe { pp_redeemer_redeem(fixture.redeemer, p0, l0, p1, l1) });
            if rc == pp_result::PP_OK {
                redeemed(fixture, a0, a1);
            }
        }
        6 => {
            let rc = check_rc(unsafe {
                pp_redeemer_redeem_authorization(fixture.redeemer, p0.cast(), l0, p1, l1)
            });
            if rc == pp_result::PP_OK {
                let text = std::str::from_utf8(a0).expect("redeemed a header that is not UTF-8");
                let token =
                    parse_authorization(text).expect("redeemed a header that does not parse");
                redeemed(fixture, &token, a1);
            }
        }
        7 => {
            let token_type = match a0 {
                [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
                _ => 2,
            };
            let (p2, l2) = raw(input.arg(2));
            let (p3, l3) = raw(input.arg(3));
            let encoded = output(cap, |o, c, l| unsafe {
                pp_challenge_encode(token_type, p1.cast(), l1, p2, l2, p3.cast(), l3, o, c, l)
            });
            if let Ok(encoded) = encoded {
                let challenge =
                    TokenChallenge::decode(&encoded).expect("an encoded challenge decodes");
                assert_eq!(challenge.encode(), encoded);
                assert_eq!(challenge.token_type, token_type);
                assert_eq!(challenge.issuer_name, a1);
                assert_eq!(challenge.redemption_context, input.arg(2));
                assert_eq!(challenge.origin_info, input.arg(3));
            }
        }
        8 => {
            let max_age = <[u8; 8]>::try_from(input.arg(2))
                .ok()
                .map(u64::from_be_bytes);
            let max_age_ptr = max_age.as_ref().map_or(null(), |m| m as *const u64);
            let header = output(cap, |o, c, l| unsafe {
                pp_challenge_www_authenticate(p0, l0, p1, l1, max_age_ptr, o.cast(), c, l)
            });
            if let Ok(header) = header {
                let text = std::str::from_utf8(&header).expect("a header that is not UTF-8");
                let parsed = parse_www_authenticate(text)
                    .unwrap_or_else(|e| panic!("a WWW-Authenticate that does not parse: {e:?}"));
                let [c] = parsed.as_slice() else {
                    panic!("{} challenges in one WWW-Authenticate", parsed.len());
                };
                assert_eq!(c.challenge_bytes, a0);
                assert_eq!(c.token_key, a1);
                assert_eq!(c.max_age, max_age);
            }
        }
        9 => {
            let header = output(cap, |o, c, l| unsafe {
                pp_authorization_encode(p0, l0, o.cast(), c, l)
            });
            if let Ok(header) = header {
                let (h, hl) = raw(&header);
                let token = output(1 << 16, |o, c, l| unsafe {
                    pp_authorization_parse(h.cast(), hl, o, c, l)
                });
                assert_eq!(
                    token.as_deref(),
                    Ok(a0),
                    "Authorization does not parse back"
                );
            }
        }
        10 => {
            let token = output(cap, |o, c, l| unsafe {
                pp_authorization_parse(p0.cast(), l0, o, c, l)
            });
            if let Ok(token) = token {
                let text = std::str::from_utf8(a0).expect("parsed a header that is not UTF-8");
                assert_eq!(parse_authorization(text).ok(), Some(token));
            }
        }
        11 => {
            let mut client = null_mut();
            let rc = check_rc(unsafe { pp_client_new(p0, l0, &mut client) });
            if rc == pp_result::PP_OK {
                let public = PublicKey::from_spki(a0).expect("a client of a key the core refuses");
                let (c, cl) = raw(&fixture.challenge);
                let mut pending = null_mut();
                ok(
                    unsafe { pp_client_request(client, c, cl, &mut pending) },
                    "a request",
                );
                let request = output(4096, |o, c, l| unsafe {
                    pp_pending_token_request(pending, o, c, l)
                })
                .expect("a request's bytes");
                let decoded = TokenRequest::decode(&request).expect("a well-formed request");
                assert_eq!(decoded.token_type, TokenType::BlindRsa2048);
                assert_eq!(
                    decoded.truncated_token_key_id,
                    public.truncated_token_key_id()
                );
                unsafe {
                    pp_pending_token_free(pending);
                    pp_client_free(client);
                }
            } else {
                assert!(client.is_null());
            }
        }
        12 => {
            let mut pending = null_mut();
            let rc = check_rc(unsafe { pp_client_request(fixture.client, p0, l0, &mut pending) });
            if rc == pp_result::PP_OK {
                let challenge = TokenChallenge::decode(a0).expect("a request for no challenge");
                assert_eq!(challenge.token_type, 2);
                let request = pending_request(fixture, pending);
                // The whole protocol on this challenge: the token verifies bound to it.
                let response = output(4096, |o, c, l| unsafe {
                    pp_issuer_issue(fixture.issuer, request.as_ptr(), request.len(), o, c, l)
                })
                .expect("the issuer signs a request of its client");
                let token = output(4096, |o, c, l| unsafe {
                    pp_pending_token_finalize(pending, response.as_ptr(), response.len(), o, c, l)
                })
                .expect("the issuer's response finalizes");
                ok(
                    unsafe {
                        pp_verifier_verify(fixture.verifier, token.as_ptr(), token.len(), p0, l0)
                    },
                    "a token made on this challenge verifies bound to it",
                );
                unsafe { pp_pending_token_free(pending) };
            }
        }
        13 => {
            let (p2, l2) = raw(input.arg(2));
            let (p3, l3) = raw(input.arg(3));
            let request = |_: ()| {
                let mut pending = null_mut();
                let rc = check_rc(unsafe {
                    pp_client_request_with_randomness(
                        fixture.client,
                        p0,
                        l0,
                        p1,
                        l1,
                        p2,
                        l2,
                        p3,
                        l3,
                        &mut pending,
                    )
                });
                (rc == pp_result::PP_OK).then(|| {
                    let bytes = pending_request(fixture, pending);
                    unsafe { pp_pending_token_free(pending) };
                    bytes
                })
            };
            if let Some(first) = request(()) {
                assert_eq!(
                    request(()),
                    Some(first),
                    "the same randomness made another request"
                );
            }
        }
        14 => {
            let token = output(cap, |o, c, l| unsafe {
                pp_pending_token_finalize(fixture.pending, p0, l0, o, c, l)
            });
            if let Ok(token) = token {
                assert_eq!(a0, fixture.response, "finalized with another response");
                assert_eq!(token, fixture.token);
            }
        }
        15 => {
            let mut issuer = null_mut();
            let rc = check_rc(unsafe { pp_issuer_new_from_pem(p0.cast(), l0, &mut issuer) });
            if rc == pp_result::PP_OK {
                // Its public key is one a verifier takes (the RSA key check is not run twice:
                // it costs milliseconds).
                let spki = output(4096, |o, c, l| unsafe {
                    pp_issuer_public_key(issuer, o, c, l)
                })
                .expect("an issuer's public key");
                let id = output(64, |o, c, l| unsafe {
                    pp_issuer_token_key_id(issuer, o, c, l)
                });
                match VoprfIssuerKey::from_pem(a0) {
                    // A VOPRF key file: its public element and id.
                    Ok(key) => {
                        assert_eq!(spki, key.public_key().bytes());
                        assert_eq!(
                            id.as_deref(),
                            Ok(key.public_key().token_key_id().as_slice())
                        );
                    }
                    Err(_) => {
                        let public = PublicKey::from_spki(&spki)
                            .expect("an issuer of a key no verifier takes");
                        assert_eq!(id.as_deref(), Ok(public.token_key_id().as_slice()));
                    }
                }
                unsafe { pp_issuer_free(issuer) };
            } else {
                assert!(issuer.is_null());
            }
        }
        16 => {
            let sig = output(cap, |o, c, l| unsafe {
                pp_issuer_issue(fixture.issuer, p0, l0, o, c, l)
            });
            if let Ok(sig) = sig {
                let decoded = TokenRequest::decode(&a0)
                    .unwrap_or_else(|e| panic!("signed a request that does not decode: {e}"));
                assert_eq!(decoded.token_type, TokenType::BlindRsa2048);
                assert_eq!(
                    decoded.truncated_token_key_id,
                    fixture.public.truncated_token_key_id()
                );
                assert!(privacypass_fuzz::signs(
                    &fixture.public,
                    &decoded.blinded_msg,
                    &sig
                ));
            }
        }
        17 => {
            let sig = output(cap, |o, c, l| unsafe {
                pp_issuer_issue_blinded(fixture.issuer, p0, l0, p1, l1, o, c, l)
            });
            if let Ok(sig) = sig {
                assert_eq!(
                    a0,
                    fixture.public.token_key_id(),
                    "signed for another key id"
                );
                let msg = &a1[a1.len().saturating_sub(256)..];
                assert!(privacypass_fuzz::signs(&fixture.public, msg, &sig));
            }
        }
        18 => {
            let mut url = a0.to_vec();
            url.push(0);
            let url = CStr::from_bytes_until_nul(&url).expect("NUL-terminated");
            let mut redeemer = null_mut();
            let rc =
                check_rc(unsafe { pp_redeemer_new(fixture.verifier, url.as_ptr(), &mut redeemer) });
            if rc == pp_result::PP_OK {
                assert!(url.to_bytes().starts_with(b"memory:"), "opened {url:?}");
                unsafe { pp_redeemer_free(redeemer) };
            } else {
                assert!(redeemer.is_null());
            }
        }
        19 => {
            let spki = output(cap, |o, c, l| unsafe {
                pp_public_key_spki(p0, l0, o, c, l)
            });
            if let Ok(spki) = spki {
                assert_eq!(spki.len(), PP_PUBLIC_KEY_LEN);
                let key = PublicKey::from_spki(&spki).expect("the RFC 9578 form parses");
                assert_eq!(key.spki(), spki.as_slice(), "not the key's RFC 9578 form");
            }
        }
        20 | 21 => {
            let keys = output(cap, |o, c, l| unsafe {
                if input.function % FUNCTIONS == 20 {
                    pp_directory_public_keys(p0.cast(), l0, o, c, l)
                } else {
                    pp_pem_public_keys(p0.cast(), l0, o, c, l)
                }
            });
            if let Ok(keys) = keys {
                assert_eq!(
                    keys.len() % PP_PUBLIC_KEY_LEN,
                    0,
                    "{} bytes of keys",
                    keys.len()
                );
                let mut seen = Vec::new();
                for spki in keys.chunks(PP_PUBLIC_KEY_LEN) {
                    let key = PublicKey::from_spki(spki).expect("a key in the RFC 9578 form");
                    assert!(!seen.contains(key.token_key_id()), "a key written twice");
                    seen.push(*key.token_key_id());
                }
                if input.function % FUNCTIONS == 20 {
                    let directory = IssuerDirectory::from_json(a0).expect("the core parses it");
                    let listed = directory.keys_of_type(TokenType::BlindRsa2048).count();
                    assert!(seen.len() <= listed, "more keys than the directory lists");
                }
            }
        }
        22 | 23 => {
            let field = output(cap, |o, c, l| unsafe {
                if input.function % FUNCTIONS == 22 {
                    pp_token_challenge_digest(p0, l0, o, c, l)
                } else {
                    pp_token_key_id(p0, l0, o, c, l)
                }
            });
            if let Ok(field) = field {
                let token = Token::decode(a0).expect("a token the core decodes");
                let expected = if input.function % FUNCTIONS == 22 {
                    Token::encoded_challenge_digest(a0).map(|d| d.to_vec())
                } else {
                    Token::encoded_token_key_id(a0).map(|d| d.to_vec())
                };
                assert_eq!(Some(field), expected, "not the field of {token:?}");
            }
        }
        24 => {
            let status = i32::from(u16::from_be_bytes(
                <[u8; 2]>::try_from(a1).unwrap_or([0, 200]),
            ));
            let rc = check_rc(unsafe { pp_redeem_response_result(status, p0, l0) });
            if rc == pp_result::PP_OK {
                assert_eq!(status, 200, "a redemption answered {status} taken as done");
            }
        }
        26 => {
            let token_type = u16::from_be_bytes(<[u8; 2]>::try_from(a1).unwrap_or([0, 1]));
            let mut issuer = null_mut();
            let rc =
                check_rc(unsafe { pp_issuer_new_from_scalar(token_type, p0, l0, &mut issuer) });
            if rc == pp_result::PP_OK {
                let t = TokenType::from_value(token_type).expect("an issuer of no token type");
                let key = VoprfIssuerKey::from_scalar(t, a0).expect("a scalar the core refuses");
                let public = output(cap, |o, c, l| unsafe {
                    pp_issuer_public_key(issuer, o, c, l)
                });
                if let Ok(public) = public {
                    assert_eq!(public, key.public_key().bytes());
                }
                let mut got = 0u16;
                ok(
                    unsafe { pp_issuer_token_type(issuer, &mut got) },
                    "its type",
                );
                assert_eq!(got, token_type);
                unsafe { pp_issuer_free(issuer) };
            } else {
                assert!(issuer.is_null());
            }
        }
        27 => {
            let token_type = u16::from_be_bytes(<[u8; 2]>::try_from(a1).unwrap_or([0, 1]));
            let mut client = null_mut();
            let rc = check_rc(unsafe { pp_client_new_voprf(token_type, p0, l0, &mut client) });
            if rc == pp_result::PP_OK {
                let t = TokenType::from_value(token_type).expect("a client of no token type");
                VoprfPublicKey::from_bytes(t, a0).expect("a client of a key the core refuses");
                // Its request for the fixture's type 2 challenge is refused.
                let (c, cl) = raw(&fixture.challenge);
                let mut pending = null_mut();
                assert_eq!(
                    unsafe { pp_client_request(client, c, cl, &mut pending) },
                    pp_result::PP_ERR_UNSUPPORTED_TOKEN
                );
                assert!(pending.is_null());
                unsafe { pp_client_free(client) };
            } else {
                assert!(client.is_null());
            }
        }
        28 | 31 => {
            // A fresh VOPRF issuer (type 1 or 5 by the first byte) issuing the argument.
            let token_type = if a1.first().is_some_and(|b| b & 1 == 1) {
                5
            } else {
                1
            };
            let mut issuer = null_mut();
            ok(
                unsafe { pp_issuer_generate_voprf(token_type, &mut issuer) },
                "pp_issuer_generate_voprf",
            );
            let response = output(cap, |o, c, l| unsafe {
                if input.function % FUNCTIONS == 28 {
                    pp_issuer_issue(issuer, p0, l0, o, c, l)
                } else {
                    let id = output(64, |o, c, l| pp_issuer_token_key_id(issuer, o, c, l))
                        .expect("its key id");
                    pp_issuer_issue_blinded(issuer, id.as_ptr(), id.len(), p0, l0, o, c, l)
                }
            });
            if response.is_ok() && input.function % FUNCTIONS == 28 {
                let decoded = TokenRequest::decode(a0)
                    .unwrap_or_else(|e| panic!("issued for a request that does not decode: {e}"));
                assert_eq!(decoded.token_type.value(), token_type);
            }
            unsafe { pp_issuer_free(issuer) };
        }
        29 => {
            let mut url = a0.to_vec();
            url.push(0);
            let url = CStr::from_bytes_until_nul(&url).expect("NUL-terminated");
            let mut redeemer = null_mut();
            let rc = check_rc(unsafe {
                pp_redeemer_new_from_issuer(fixture.issuer, url.as_ptr(), &mut redeemer)
            });
            if rc == pp_result::PP_OK {
                assert!(url.to_bytes().starts_with(b"memory:"), "opened {url:?}");
                unsafe { pp_redeemer_free(redeemer) };
            } else {
                assert!(redeemer.is_null());
            }
        }
        30 => {
            let mut got = 0u16;
            ok(
                unsafe { pp_issuer_token_type(fixture.issuer, &mut got) },
                "pp_issuer_token_type",
            );
            assert_eq!(got, 2);
        }
        32 => {
            let mut got = 0xabcdu16;
            let rc = check_rc(unsafe { pp_token_type(p0, l0, &mut got) });
            match Token::decode(a0) {
                Ok(token) => assert_eq!((rc, got), (pp_result::PP_OK, token.token_type.value())),
                Err(_) => assert_eq!(got, 0xabcd, "a type written on failure ({rc:?})"),
            }
        }
        33 => {
            let value = u16::from_be_bytes(<[u8; 2]>::try_from(a0).unwrap_or_default());
            let len = pp_token_key_len(value);
            match TokenType::from_value(value) {
                Some(TokenType::BlindRsa2048) => assert_eq!(len, PP_PUBLIC_KEY_LEN),
                Some(t) => assert_eq!(Some(len), t.voprf_suite().map(|s| s.element_len())),
                None => assert_eq!(len, 0),
            }
        }
        34 => {
            let value = u16::from_be_bytes(<[u8; 2]>::try_from(a1).unwrap_or([0, 2]));
            let keys = output(cap, |o, c, l| unsafe {
                pp_directory_token_keys(p0.cast(), l0, value, o, c, l)
            });
            if let Ok(keys) = keys {
                let token_type = TokenType::from_value(value).expect("a type the library knows");
                let key_len = pp_token_key_len(value);
                assert_eq!(keys.len() % key_len, 0, "{} bytes of keys", keys.len());
                let mut seen = Vec::new();
                for key in keys.chunks(key_len) {
                    let id = if token_type == TokenType::BlindRsa2048 {
                        *PublicKey::from_spki(key)
                            .expect("an RFC 9578 key")
                            .token_key_id()
                    } else {
                        *VoprfPublicKey::from_bytes(token_type, key)
                            .expect("an element of the group")
                            .token_key_id()
                    };
                    assert!(!seen.contains(&id), "a key written twice");
                    seen.push(id);
                }
                let directory = IssuerDirectory::from_json(a0).expect("the core parses it");
                assert!(seen.len() <= directory.keys_of_type(token_type).count());
            }
        }
        35 => {
            let id = output(cap, |o, c, l| unsafe {
                pp_token_key_id_of_key(p0, l0, o, c, l)
            });
            if let Ok(id) = id {
                assert_eq!(id, privacypass_core::crypto::sha256(a0).to_vec());
            }
        }
        36 => {
            // A fresh VOPRF issuer (type 1 or 5 by the second argument) issuing an amortized
            // batch of at most (third argument's first byte) elements.
            let token_type = if a1.first().is_some_and(|b| b & 1 == 1) {
                5
            } else {
                1
            };
            let max = usize::from(input.arg(2).first().copied().unwrap_or(8));
            let mut issuer = null_mut();
            ok(
                unsafe { pp_issuer_generate_voprf(token_type, &mut issuer) },
                "pp_issuer_generate_voprf",
            );
            let response = output(cap, |o, c, l| unsafe {
                pp_issuer_issue_amortized(issuer, p0, l0, max, o, c, l)
            });
            if let Ok(response) = response {
                let request = AmortizedBatchTokenRequest::decode(a0, max)
                    .unwrap_or_else(|e| panic!("issued a batch that does not decode: {e}"));
                assert_eq!(request.token_type.value(), token_type);
                let decoded =
                    AmortizedBatchTokenResponse::decode(request.token_type, &response, max)
                        .expect("a response that decodes");
                assert_eq!(decoded.evaluated_msgs.len(), request.blinded_msgs.len());
            }
            // The fixture's RSA issuer serves no amortized batch.
            let rc = check_rc(unsafe {
                pp_issuer_issue_amortized(fixture.issuer, p0, l0, max, null_mut(), 0, &mut 0)
            });
            assert_ne!(rc, pp_result::PP_OK);
            assert_ne!(rc, pp_result::PP_ERR_BUFFER_TOO_SMALL);
            unsafe { pp_issuer_free(issuer) };
        }
        37 => {
            // A generic batch over the fixture's RSA issuer and a fresh type 1 one.
            let max = usize::from(a1.first().copied().unwrap_or(8));
            let mut voprf = null_mut();
            ok(
                unsafe { pp_issuer_generate_voprf(1, &mut voprf) },
                "pp_issuer_generate_voprf",
            );
            let mut issuers = [fixture.issuer.cast_const(), voprf.cast_const()];
            let response = output(cap, |o, c, l| unsafe {
                pp_issuer_issue_generic(issuers.as_mut_ptr(), 2, p0, l0, max, 2, o, c, l)
            });
            if let Ok(response) = response {
                let request = GenericBatchTokenRequest::decode(a0, max)
                    .unwrap_or_else(|e| panic!("issued a batch that does not decode: {e}"));
                let decoded = GenericBatchTokenResponse::decode(&response, max)
                    .expect("a response that decodes");
                assert_eq!(decoded.token_responses.len(), request.token_requests.len());
                for (asked, answer) in request.token_requests.iter().zip(&decoded.token_responses) {
                    if let Some((t, _)) = answer {
                        assert_eq!(*t, asked.token_type, "an answer of another type");
                        assert!(
                            *t != TokenType::BlindRsa2048
                                || asked.truncated_token_key_id
                                    == fixture.public.truncated_token_key_id(),
                            "issued for another RSA key"
                        );
                        assert_ne!(*t, TokenType::VoprfRistretto255, "issued with no key");
                    }
                }
            }
            unsafe { pp_issuer_free(voprf) };
        }
        38 => {
            // A known-answer amortized batch of type 1 from the arguments (nonces, blinds),
            // twice: the same request; then its finalize of the third argument (only the
            // issuer's own answer can finalize).
            let mut issuer = null_mut();
            ok(
                unsafe { pp_issuer_generate_voprf(1, &mut issuer) },
                "pp_issuer_generate_voprf",
            );
            let key = output(4096, |o, c, l| unsafe {
                pp_issuer_public_key(issuer, o, c, l)
            })
            .expect("its key");
            let mut client = null_mut();
            ok(
                unsafe { pp_client_new_voprf(1, key.as_ptr(), key.len(), &mut client) },
                "pp_client_new_voprf",
            );
            let name = b"issuer.example";
            let challenge = output(4096, |o, c, l| unsafe {
                pp_challenge_encode(
                    1,
                    name.as_ptr().cast(),
                    name.len(),
                    null(),
                    0,
                    null(),
                    0,
                    o,
                    c,
                    l,
                )
            })
            .expect("a challenge");
            let (c, cl) = raw(&challenge);
            let mut batches = [null_mut(); 2];
            for batch in &mut batches {
                let rc = check_rc(unsafe {
                    pp_client_request_amortized_with_randomness(
                        client, c, cl, p0, l0, p1, l1, batch,
                    )
                });
                assert_eq!(rc == pp_result::PP_OK, !batch.is_null());
            }
            if !batches[0].is_null() {
                let requests: Vec<Vec<u8>> = batches
                    .iter()
                    .map(|&b| {
                        output(cap, |o, c, l| unsafe {
                            pp_pending_batch_request(b, o, c, l)
                        })
                        .expect("its request")
                    })
                    .collect();
                assert_eq!(
                    requests[0], requests[1],
                    "the same randomness, another request"
                );
                let decoded =
                    AmortizedBatchTokenRequest::decode(&requests[0], usize::MAX).expect("decodes");
                assert_eq!(decoded.blinded_msgs.len(), l0 / 32);
                let (p2, l2) = raw(input.arg(2));
                let tokens = output(cap, |o, c, l| unsafe {
                    pp_pending_batch_finalize(batches[0], p2, l2, o, c, l)
                });
                assert!(
                    tokens.is_err(),
                    "finalized a response the issuer did not make"
                );
                let response = output(1 << 16, |o, c, l| unsafe {
                    pp_issuer_issue_amortized(
                        issuer,
                        requests[0].as_ptr(),
                        requests[0].len(),
                        2048,
                        o,
                        c,
                        l,
                    )
                })
                .expect("the issuer answers its own client");
                let tokens = output(cap, |o, c, l| unsafe {
                    pp_pending_batch_finalize(
                        batches[0],
                        response.as_ptr(),
                        response.len(),
                        o,
                        c,
                        l,
                    )
                })
                .expect("its own response finalizes");
                assert_eq!(
                    tokens.len(),
                    decoded.blinded_msgs.len() * privacypass_ffi::PP_VOPRF_P384_TOKEN_LEN
                );
            }
            for batch in batches {
                unsafe { pp_pending_batch_free(batch) };
            }
            unsafe { pp_client_free(client) };
            unsafe { pp_issuer_free(issuer) };
        }
        39 => {
            // The fixture's generic batch (its one type 2 pending token) finalizing the
            // argument: written only on success, the issued token or nothing.
            const UNSET: usize = 0xdead;
            let mut lens = [UNSET; 2];
            let tokens = output(cap, |o, c, l| unsafe {
                pp_pending_generic_batch_finalize(
                    fixture.generic,
                    p0,
                    l0,
                    o,
                    c,
                    l,
                    lens.as_mut_ptr(),
                    lens.len(),
                )
            });
            match tokens {
                Ok(tokens) => {
                    assert_eq!(lens[1], UNSET, "wrote past the batch's entries");
                    match lens[0] {
                        0 => assert!(tokens.is_empty()),
                        n => {
                            assert_eq!(n, tokens.len());
                            assert_eq!(tokens, fixture.token, "finalized another token");
                        }
                    }
                }
                Err(rc) => assert_eq!(lens, [UNSET; 2], "lengths written on failure ({rc:?})"),
            }
        }
        _ => {
            let code = i32::from_be_bytes(<[u8; 4]>::try_from(a0).unwrap_or_default());
            let text = pp_result_str(code);
            assert!(!text.is_null());
            // SAFETY: a static NUL-terminated string.
            let text = unsafe { CStr::from_ptr(text as *const c_char) };
            assert!(text.to_str().is_ok_and(|t| !t.is_empty()));
            let status = pp_result_http_status(code);
            assert!(
                status == 0 || (200..600).contains(&status),
                "HTTP status {status}"
            );
            let _ = pp_result_jsonrpc_code(code);
        }
    }
}

/// A verification succeeded: only the token issued here, with its challenge or none.
fn verified(fixture: &Fixture, token: &[u8], challenge: &[u8]) {
    assert_eq!(
        token, fixture.token,
        "verified bytes that are not the token issued here"
    );
    assert!(
        challenge.is_empty() || challenge == fixture.challenge,
        "verified against a challenge the token is not bound to"
    );
}

/// A redemption succeeded: as `verified`, and the first one.
fn redeemed(fixture: &Fixture, token: &[u8], challenge: &[u8]) {
    verified(fixture, token, challenge);
    assert!(
        !fixture.redeemed.swap(true, Ordering::SeqCst),
        "the token redeemed twice"
    );
}

/// The request of a pending token: 259 bytes of type 2 naming the issuer's key.
fn pending_request(fixture: &Fixture, pending: *mut pp_pending_token) -> Vec<u8> {
    // SAFETY: a live handle and valid buffers.
    unsafe {
        let request = output(4096, |o, c, l| pp_pending_token_request(pending, o, c, l))
            .expect("its request");
        let decoded = TokenRequest::decode(&request).expect("a well-formed request");
        assert_eq!(decoded.token_type, TokenType::BlindRsa2048);
        assert_eq!(
            decoded.truncated_token_key_id,
            fixture.public.truncated_token_key_id()
        );
        request
    }
}
