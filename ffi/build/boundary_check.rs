//! The check that every export of libprivacypass runs inside `ffi_panic_boundary!`.
//!
//! `build.rs` runs it over `src/` and fails the build on any finding; the crate's unit tests
//! run it on hand-written bad sources, so a check that stops finding things fails too.
//!
//! The rule: every item that is exported unmangled (`#[no_mangle]`, `#[unsafe(no_mangle)]`,
//! `#[export_name = ..]`) is an `extern "C"` function, and its whole body is one
//! `ffi_panic_boundary! { .. }`. `extern "C-unwind"` is refused: unwinding into C is what the
//! boundary exists to prevent.

/// Unmangled exports found and the findings, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub exports: usize,
    pub findings: Vec<String>,
}

const EXPORT_MARKERS: [&str; 3] = ["#[no_mangle]", "#[unsafe(no_mangle)]", "#[export_name"];

/// Checks the sources given as (file name, text).
pub fn check<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> Report {
    let mut report = Report::default();
    for (file, text) in sources {
        check_file(file, text, &mut report);
    }
    report
}

fn check_file(file: &str, text: &str, report: &mut Report) {
    let s = text.as_bytes();
    let mut starts: Vec<usize> = EXPORT_MARKERS
        .iter()
        .flat_map(|m| text.match_indices(m).map(|(at, _)| at))
        .collect();
    starts.sort_unstable();
    for at in starts {
        report.exports += 1;
        let Some(open) = text[at..].find('{').map(|n| at + n) else {
            report
                .findings
                .push(format!("{file}: an export without a body"));
            continue;
        };
        let signature = &text[at..open];
        let name = signature
            .split("fn ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .unwrap_or_default();
        if name.is_empty() {
            report
                .findings
                .push(format!("{file}: an unmangled item that is not a function"));
            continue;
        }
        if signature.contains("\"C-unwind\"") || !signature.contains("extern \"C\"") {
            report
                .findings
                .push(format!("{file}: {name} is not `extern \"C\"`"));
            continue;
        }
        let body = skip_trivia(s, open + 1);
        let guarded = text[body..].starts_with("ffi_panic_boundary!")
            && match text[body..].find('{').map(|n| body + n) {
                Some(macro_open) => {
                    match (matching_brace(s, macro_open), matching_brace(s, open)) {
                        (Some(macro_close), Some(fn_close)) => {
                            let after = skip_trivia(s, macro_close);
                            after < s.len() && s[after] == b'}' && after + 1 == fn_close
                        }
                        _ => false,
                    }
                }
                None => false,
            };
        if !guarded {
            report.findings.push(format!(
                "{file}: {name}: the body is not exactly one ffi_panic_boundary! {{ .. }}"
            ));
        }
    }
}

/// Skips whitespace and comments from `i`.
pub fn skip_trivia(s: &[u8], mut i: usize) -> usize {
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with(b"/*") {
            match s[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(end) => i += 2 + end + 2,
                None => return s.len(),
            }
        } else {
            return i;
        }
    }
}

/// The index just past the brace that closes the one at `open`, skipping comments, string,
/// byte-string, raw-string and char literals (lifetimes are not literals); `None` when the
/// braces do not balance.
pub fn matching_brace(s: &[u8], open: usize) -> Option<usize> {
    if s.get(open) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            b'/' if s[i..].starts_with(b"//") || s[i..].starts_with(b"/*") => {
                i = skip_trivia(s, i);
                continue;
            }
            b'r' if s[i + 1..].starts_with(b"\"") || s[i + 1..].starts_with(b"#") => {
                let hashes = s[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if s.get(i + 1 + hashes) == Some(&b'"') {
                    let mut close = b"\"".to_vec();
                    close.extend(std::iter::repeat_n(b'#', hashes));
                    let start = i + 2 + hashes;
                    let end = s[start..]
                        .windows(close.len())
                        .position(|w| w == close.as_slice())?;
                    i = start + end + close.len();
                    continue;
                }
            }
            b'"' => {
                i += 1;
                while *s.get(i)? != b'"' {
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{..}', '{'), not a lifetime ('a).
                if *s.get(i + 1)? == b'\\' {
                    i += 2;
                    while *s.get(i)? != b'\'' {
                        i += 1;
                    }
                } else if s.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(source: &str) -> Vec<String> {
        let report = check([("x.rs", source)]);
        assert_eq!(report.exports, 1, "{source}");
        report.findings
    }

    #[test]
    fn a_guarded_export_passes() {
        let ok = "#[no_mangle]\npub extern \"C\" fn pp_f(x: *const u8) -> i32 {\n    \
                  // one comment\n    ffi_panic_boundary! { let c = '{'; let s = \"}\"; \
                  let r = r#\"}\"#; /* } */ 0 }\n}\n";
        assert_eq!(findings(ok), Vec::<String>::new());
        let unsafe_attr = ok.replace("#[no_mangle]", "#[unsafe(no_mangle)]");
        assert_eq!(findings(&unsafe_attr), Vec::<String>::new());
    }

    #[test]
    fn unguarded_exports_are_found() {
        for bad in [
            // work before the boundary
            "#[no_mangle]\npub extern \"C\" fn pp_f() -> i32 { let x = 1; ffi_panic_boundary! { x } }",
            // work after it
            "#[no_mangle]\npub extern \"C\" fn pp_f() -> i32 { ffi_panic_boundary! { 1 }; g() }",
            // no boundary at all
            "#[no_mangle]\npub extern \"C\" fn pp_f() -> i32 { 1 }",
            // an export under another name
            "#[export_name = \"pp_g\"]\npub extern \"C\" fn f() -> i32 { 1 }",
            // unwinding into C on purpose
            "#[no_mangle]\npub extern \"C-unwind\" fn pp_f() -> i32 { ffi_panic_boundary! { 1 } }",
            // the Rust ABI, unmangled
            "#[no_mangle]\npub fn pp_f() -> i32 { ffi_panic_boundary! { 1 } }",
            // a static
            "#[no_mangle]\npub static PP_X: Foo = Foo { a: 1 };",
            // unbalanced
            "#[no_mangle]\npub extern \"C\" fn pp_f() -> i32 { ffi_panic_boundary! { 1 }",
        ] {
            let found = findings(bad);
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
        }
    }

    #[test]
    fn braces_inside_literals_and_comments_are_skipped() {
        let tricky =
            "{ ffi_panic_boundary! { let c = '{'; let s = \"}\"; let r = r#\"}\"#; /* } */ } }";
        let t = tricky.as_bytes();
        let macro_open = tricky[1..].find('{').map(|n| n + 1);
        assert_eq!(
            macro_open.and_then(|o| matching_brace(t, o)),
            Some(tricky.len() - 2)
        );
        assert_eq!(matching_brace(t, 0), Some(tricky.len()));
        assert_eq!(matching_brace(b"{ \"}", 0), None);
    }
}
