//go:build !privacypass_testing

package privacypass

// The production link: libprivacypass. Built with the tag privacypass_testing, the package links
// the test-only libprivacypass_testing instead (testing_panic.go).

/*
#cgo LDFLAGS: -lprivacypass
*/
import "C"
