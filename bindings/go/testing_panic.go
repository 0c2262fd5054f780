//go:build privacypass_testing

package privacypass

// With the tag privacypass_testing (make test-go's second run), the package links
// libprivacypass_testing, the test-only build of the library (ffi/testing/): every export of
// libprivacypass plus pp_test_panic. Without the tag nothing names pp_test_panic, which the
// production library does not have.

/*
#cgo CFLAGS: -I${SRCDIR}/../../ffi/testing
#cgo LDFLAGS: -lprivacypass_testing
#include "privacypass_testing.h"
*/
import "C"

// testPanic calls the test-only library's pp_test_panic, which panics inside the panic boundary.
func testPanic() error { return check("pp_test_panic", C.pp_test_panic()) }
