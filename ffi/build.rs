//! Fails the build when an export of libprivacypass is not inside `ffi_panic_boundary!`
//! (a panic unwinding into C is undefined behaviour).

#[path = "build/boundary_check.rs"]
mod boundary_check;

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build");
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files)?;
    files.sort();
    let texts = files
        .iter()
        .map(|f| Ok((f.display().to_string(), std::fs::read_to_string(f)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let report = boundary_check::check(texts.iter().map(|(f, t)| (f.as_str(), t.as_str())));
    if !report.findings.is_empty() {
        eprintln!("exports outside ffi_panic_boundary!:");
        for finding in &report.findings {
            eprintln!("  {finding}");
        }
        std::process::exit(1);
    }
    // The library exports 30-odd functions: finding far fewer means the scan broke.
    if report.exports < 30 {
        return Err(format!("the boundary check found only {} exports", report.exports).into());
    }
    Ok(())
}
