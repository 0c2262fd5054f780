//! Base64 as Privacy Pass peers send it: URL-safe or standard alphabet, padded or not.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);

const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
const STD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);

/// Decodes base64url, padded or not (RFC 9577 header values, JSON-RPC params).
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    URL_LENIENT.decode(text.trim()).ok()
}

/// Decodes either alphabet, padded or not. Text mixing both alphabets is refused.
pub fn decode_any(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.contains(['+', '/']) {
        STD_LENIENT.decode(text).ok()
    } else {
        URL_LENIENT.decode(text).ok()
    }
}

/// base64url without padding, what JSON bodies carry.
pub fn encode_url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url with padding, as RFC 9577's examples write header parameters.
pub fn encode_url_padded(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// Standard base64 with padding.
pub fn encode_std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_alphabets_and_paddings() {
        let bytes = [0xfbu8, 0xff, 0xfe, 0x01];
        for text in ["-__-AQ", "-__-AQ==", "+//+AQ", "+//+AQ=="] {
            assert_eq!(decode_any(text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(decode_url("-__-AQ==").as_deref(), Some(&bytes[..]));
        assert!(decode_url("+//+AQ").is_none());
        assert!(decode_any("-_+/").is_none());
        assert!(decode_any("a").is_none());
    }
}
