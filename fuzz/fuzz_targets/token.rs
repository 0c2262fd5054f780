//! Token::decode on any bytes: never panics, and what decodes encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privacypass_core::Token;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = Token::decode(data) {
        assert_eq!(token.encode(), data);
    }
});
