//! libprivacypass_testing: libprivacypass with one more export, `pp_test_panic`, for the tests
//! of the panic boundary (C, Go, Python). Never shipped: the production library has no way to
//! panic on purpose. The declaration for C is `ffi/testing/privacypass_testing.h`.
//!
//! The export runs inside the library's own `ffi_panic_boundary!`, so what it proves holds for
//! every export; `build.rs` checks it as libprivacypass's `build.rs` checks those.

use privacypass::ffi_panic_boundary;
pub use privacypass::pp_result;

/// FOR TESTS ONLY: panics inside the panic boundary and so returns `PP_ERR_PANIC`, proving that
/// no panic crosses into C. The panic message goes to stderr.
#[no_mangle]
pub extern "C" fn pp_test_panic() -> pp_result {
    ffi_panic_boundary! {
        panic!("pp_test_panic: a deliberate panic to test the boundary")
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn a_panic_becomes_pp_err_panic() {
        assert_eq!(pp_test_panic(), pp_result::PP_ERR_PANIC);
        // The library still works afterwards.
        // SAFETY: a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(privacypass::pp_version()) };
        assert_eq!(version.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
    }
}
