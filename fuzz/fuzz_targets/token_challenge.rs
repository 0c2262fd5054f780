//! TokenChallenge::decode on any bytes: never panics, and what decodes encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privacypass_core::TokenChallenge;

fuzz_target!(|data: &[u8]| {
    if let Ok(challenge) = TokenChallenge::decode(data) {
        assert_eq!(challenge.encode(), data);
    }
});
