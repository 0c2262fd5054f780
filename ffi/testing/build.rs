//! Fails the build when `pp_test_panic` (or any other export here) is not inside
//! `ffi_panic_boundary!`: the same check as libprivacypass's `build.rs`.

#[path = "../build/boundary_check.rs"]
mod boundary_check;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=../build");
    let file = "src/lib.rs";
    let text = std::fs::read_to_string(file)?;
    let report = boundary_check::check([(file, text.as_str())]);
    if !report.findings.is_empty() {
        eprintln!("exports outside ffi_panic_boundary!:");
        for finding in &report.findings {
            eprintln!("  {finding}");
        }
        std::process::exit(1);
    }
    if report.exports != 1 {
        return Err(format!("the boundary check found {} exports, not 1", report.exports).into());
    }
    Ok(())
}
