//! The WWW-Authenticate and Authorization parsers on any text: never panic; a challenge that
//! parses carries a TokenChallenge that decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privacypass_core::header::{parse_auth_items, parse_authorization, parse_www_authenticate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_auth_items(text);
    let _ = parse_authorization(text);
    if let Ok(challenges) = parse_www_authenticate(text) {
        for c in challenges {
            assert_eq!(c.challenge.encode(), c.challenge_bytes);
        }
    }
});
