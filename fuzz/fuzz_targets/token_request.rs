//! TokenRequest::decode and TokenResponse::decode on any bytes: never panic, and what decodes
//! encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privacypass_core::{TokenRequest, TokenResponse, TokenType};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TokenRequest::decode(data) {
        assert_eq!(request.encode(), data);
    }
    for token_type in [TokenType::BlindRsa2048, TokenType::VoprfP384] {
        if let Ok(response) = TokenResponse::decode(token_type, data) {
            assert_eq!(response.encode(), data);
        }
    }
});
