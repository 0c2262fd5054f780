//go:build privacypass_testing

package privacypass

import "testing"

// The library's panic boundary, through the test-only library (go test -tags privacypass_testing):
// a panic comes back as ErrPanic, and the library keeps working.
func TestPanicBoundary(t *testing.T) {
	wantErr(t, testPanic(), ErrPanic)
	wantErr(t, testPanic(), ErrPanic)
	if Version() != HeaderVersion {
		t.Error("the library stopped working after a caught panic")
	}
	issuer, err := GenerateIssuer()
	mustNoErr(t, err)
	defer issuer.Close()
	client, err := NewClient(issuer.PublicKey())
	mustNoErr(t, err)
	client.Close()
}
