//! Helpers shared by the core's integration tests: the published vectors, copied from RFC 9474,
//! RFC 9577 and RFC 9578 into `tests/vectors/`.
#![allow(dead_code)]

use serde_json::Value;

pub fn vectors(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/vectors/{file}",
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A hex field, with or without a `0x` prefix.
pub fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    let text = v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no field {name}"));
    hex::decode(text.trim_start_matches("0x")).unwrap()
}

pub fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap()
}
