//! The README's error table is the code's table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn readme_error_table_matches_the_code() {
    let readme = std::fs::read_to_string(format!(
        "{}/README.md",
        // Read at run time: the binary may have been built from another checkout.
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    ))
    .unwrap();
    let table = privacypass_core::ErrorCode::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md must contain exactly:\n{table}"
    );
}
