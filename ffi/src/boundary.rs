//! The C boundary's plumbing: the panic boundary every export runs inside, and the checked
//! conversions from C arguments (pointers, lengths, handles, output buffers) to Rust values.
//!
//! Nothing here allocates on behalf of the caller except the handles, which are `Arc`s handed
//! out with `Arc::into_raw` and taken back by the matching `_free`.

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::result::pp_result;

/// Runs the body of an exported function inside `catch_unwind`, so that no panic ever unwinds
/// into C. Every `extern "C"` function's body is exactly one invocation of this macro; a test
/// (`every_export_is_inside_the_panic_boundary`) fails when one is not.
///
/// The body evaluates to the function's [`FfiReturn::Body`]: `Result<(), pp_result>` for
/// functions returning `pp_result` (so `?` works), the plain value for the others. A panic
/// answers [`FfiReturn::on_panic`]: `PP_ERR_PANIC` for `pp_result`.
///
/// Exported (hidden) for the test-only library `ffi/testing/`, whose `pp_test_panic` passes the
/// same boundary; it is not part of the crate's API.
#[doc(hidden)]
#[macro_export]
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {
        $crate::__boundary_guard(move || { $($body)* })
    };
}
pub(crate) use crate::ffi_panic_boundary;

/// What an exported function returns, and what it returns when its body panicked.
pub trait FfiReturn: Sized {
    /// What the body inside the boundary evaluates to.
    type Body;
    fn from_body(body: Self::Body) -> Self;
    fn on_panic() -> Self;
}

impl FfiReturn for pp_result {
    type Body = Result<(), pp_result>;
    fn from_body(body: Self::Body) -> Self {
        match body {
            Ok(()) => pp_result::PP_OK,
            Err(code) => code,
        }
    }
    fn on_panic() -> Self {
        pp_result::PP_ERR_PANIC
    }
}

impl FfiReturn for () {
    type Body = ();
    fn from_body(_: ()) {}
    fn on_panic() {}
}

impl FfiReturn for c_int {
    type Body = c_int;
    fn from_body(body: c_int) -> c_int {
        body
    }
    fn on_panic() -> c_int {
        0
    }
}

/// A length: 0 when the body panicked, which callers already read as "not known".
impl FfiReturn for usize {
    type Body = usize;
    fn from_body(body: usize) -> usize {
        body
    }
    fn on_panic() -> usize {
        0
    }
}

impl FfiReturn for *const c_char {
    type Body = *const c_char;
    fn from_body(body: *const c_char) -> *const c_char {
        body
    }
    fn on_panic() -> *const c_char {
        c"panic inside libprivacypass".as_ptr()
    }
}

/// The body of `ffi_panic_boundary!`: runs `body`, turning a panic into the return type's
/// panic value.
pub fn guard<R: FfiReturn>(body: impl FnOnce() -> R::Body) -> R {
    // The handles are immutable (or guard their state with locks), so a panic cannot leave
    // them half-updated: asserting unwind safety is sound.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => R::from_body(value),
        Err(_) => R::on_panic(),
    }
}

/// An input buffer `(ptr, len)`: `(NULL, 0)` is the empty slice, `(NULL, n > 0)` an error.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay valid and unmodified for `'a`.
pub unsafe fn input<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], pp_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(pp_result::PP_ERR_NULL_ARGUMENT)
        };
    }
    if len > isize::MAX as usize {
        return Err(pp_result::PP_ERR_INVALID_INPUT);
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A text input `(ptr, len)`, which must be UTF-8 (header values are ASCII).
///
/// # Safety
/// As [`input`].
pub unsafe fn input_str<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, pp_result> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(ptr.cast(), len) }?;
    std::str::from_utf8(bytes).map_err(|_| pp_result::PP_ERR_INVALID_INPUT)
}

/// An HTTP header value `(ptr, len)`: bytes that are not UTF-8 are a malformed header
/// (`PP_ERR_INVALID_PARAMS`), not a malformed argument.
///
/// # Safety
/// As [`input`].
pub unsafe fn input_header<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, pp_result> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(ptr.cast(), len) }?;
    std::str::from_utf8(bytes).map_err(|_| pp_result::PP_ERR_INVALID_PARAMS)
}

/// An optional input: empty (`(NULL, 0)` or any pointer with length 0) is "absent".
///
/// # Safety
/// As [`input`].
pub unsafe fn optional_input<'a>(
    ptr: *const u8,
    len: usize,
) -> Result<Option<&'a [u8]>, pp_result> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input(ptr, len) }?;
    Ok(if bytes.is_empty() { None } else { Some(bytes) })
}

/// A NUL-terminated configuration string (store URLs).
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string valid for `'a`.
pub unsafe fn c_str<'a>(ptr: *const c_char) -> Result<&'a str, pp_result> {
    if ptr.is_null() {
        return Err(pp_result::PP_ERR_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL and NUL-terminated, as the caller promises.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map_err(|_| pp_result::PP_ERR_INVALID_INPUT)
}

/// A caller-owned output buffer `(out, cap, out_len)`, checked before any work is done so that a
/// bad argument costs nothing and writes nothing.
#[derive(Debug)]
pub struct Output {
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
}

impl Output {
    /// Checks the arguments: `out_len` must not be NULL, and `out` may be NULL only with
    /// `cap == 0` (a size query).
    pub fn new(out: *mut u8, cap: usize, out_len: *mut usize) -> Result<Output, pp_result> {
        if out_len.is_null() || (out.is_null() && cap != 0) {
            return Err(pp_result::PP_ERR_NULL_ARGUMENT);
        }
        Ok(Output { out, cap, out_len })
    }

    /// Writes `bytes` and their length. When they do not fit, writes only the length needed
    /// and answers `PP_ERR_BUFFER_TOO_SMALL`.
    ///
    /// # Safety
    /// `out` must point to `cap` writable bytes and `out_len` to a writable `size_t`, neither
    /// overlapping `bytes`.
    pub unsafe fn write(self, bytes: &[u8]) -> Result<(), pp_result> {
        if bytes.len() > self.cap {
            // SAFETY: checked non-NULL in `new`; the caller promises it is writable.
            unsafe { self.out_len.write(bytes.len()) };
            return Err(pp_result::PP_ERR_BUFFER_TOO_SMALL);
        }
        if !bytes.is_empty() {
            // SAFETY: `out` is non-NULL because cap >= len > 0, and holds `cap` bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.out, bytes.len()) };
        }
        // SAFETY: as above.
        unsafe { self.out_len.write(bytes.len()) };
        Ok(())
    }
}

/// Checks a handle out-parameter before any work is done.
pub fn handle_out<T>(out: *mut *mut T) -> Result<*mut *mut T, pp_result> {
    if out.is_null() {
        Err(pp_result::PP_ERR_NULL_ARGUMENT)
    } else {
        Ok(out)
    }
}

/// Hands a new handle to C through a checked out-parameter.
///
/// # Safety
/// `out` must come from [`handle_out`] and point to a writable pointer.
pub unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: `out` is non-NULL (checked by `handle_out`) and writable, as the caller promises.
    unsafe { out.write(Arc::into_raw(Arc::new(value)).cast_mut()) };
}

/// Borrows a handle given out by [`give`].
///
/// # Safety
/// A non-NULL `ptr` must come from [`give`] for the same `T` and not have been freed.
pub unsafe fn borrow<'a, T>(ptr: *const T) -> Result<&'a T, pp_result> {
    // SAFETY: the caller promises a live handle of this type.
    unsafe { ptr.as_ref() }.ok_or(pp_result::PP_ERR_NULL_ARGUMENT)
}

/// Frees a handle given out by [`give`]; NULL is a no-op.
///
/// # Safety
/// A non-NULL `ptr` must come from [`give`] for the same `T` and not have been freed.
pub unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the pointer came from `Arc::into_raw` of an `Arc<T>` and is released once.
        drop(unsafe { Arc::from_raw(ptr.cast_const()) });
    }
}

/// A reference of its own to a handle given out by [`give`]: the caller's handle stays the
/// caller's, and may be freed while this one lives.
///
/// # Safety
/// As [`borrow`].
pub unsafe fn share<T>(ptr: *const T) -> Result<Arc<T>, pp_result> {
    if ptr.is_null() {
        return Err(pp_result::PP_ERR_NULL_ARGUMENT);
    }
    // SAFETY: the pointer came from `Arc::into_raw` of a live `Arc<T>`, as the caller promises:
    // one more strong count, then an `Arc` that owns exactly that count.
    unsafe {
        Arc::increment_strong_count(ptr);
        Ok(Arc::from_raw(ptr))
    }
}

/// An input array of handles `(ptr, n)`: `(NULL, 0)` is empty, `(NULL, n > 0)` an error. The
/// handles themselves are not checked here (see [`share`] and [`borrow`]).
///
/// # Safety
/// A non-NULL `ptr` must point to `n` readable pointers that stay valid for `'a`.
pub unsafe fn handles<'a, T>(ptr: *const *const T, n: usize) -> Result<&'a [*const T], pp_result> {
    if ptr.is_null() {
        return if n == 0 {
            Ok(&[])
        } else {
            Err(pp_result::PP_ERR_NULL_ARGUMENT)
        };
    }
    if n > isize::MAX as usize / std::mem::size_of::<*const T>() {
        return Err(pp_result::PP_ERR_INVALID_INPUT);
    }
    // SAFETY: non-NULL, and the caller promises `n` readable pointers.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}
