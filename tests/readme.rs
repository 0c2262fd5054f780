//! The README's error table is the code's table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn readme_error_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = privacypass::ErrorCode::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md must contain exactly:\n{table}"
    );
}
