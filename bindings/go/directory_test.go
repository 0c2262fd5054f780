package privacypass

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// dirEntry is one token-keys entry of a test directory: notBefore is the JSON of its
// "not-before" member, or "" for an entry without one.
type dirEntry struct {
	tokenType uint16
	key       []byte
	notBefore string
}

func dirOfEntries(entries ...dirEntry) []byte {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprintf(`{"token-type": %d, "token-key": %q`, e.tokenType,
			base64.RawURLEncoding.EncodeToString(e.key))
		if e.notBefore != "" {
			parts[i] += `, "not-before": ` + e.notBefore
		}
		parts[i] += "}"
	}
	return []byte(`{"issuer-request-uri": "https://issuer.example/token-request", "token-keys": [` +
		strings.Join(parts, ", ") + `]}`)
}

// The keys of one type a directory lists, in its order, each once, with their not-before in the
// same order (the zero time for none); a type the directory does not list has none; errors.
func TestDirectoryTokenKeysAndNotBefore(t *testing.T) {
	a, b := testIssuer(t), testIssuer2(t)
	p384, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	defer p384.Close()

	dir := dirOfEntries(
		dirEntry{TokenTypeBlindRSA, b.PublicKey(), "1900000000"}, // the next key, listed first
		dirEntry{TokenTypeVoprfP384, p384.PublicKey(), "7"},
		dirEntry{TokenTypeBlindRSA, a.PublicKey(), "1700000000"},
		dirEntry{TokenTypeBlindRSA, b.PublicKey(), "5"}, // listed twice: once, its first not-before
	)
	keys, err := DirectoryTokenKeys(dir, TokenTypeBlindRSA)
	mustNoErr(t, err)
	if len(keys) != 2 || !bytes.Equal(keys[0], b.PublicKey()) || !bytes.Equal(keys[1], a.PublicKey()) {
		t.Fatalf("type 2 keys: %d keys, want b's then a's", len(keys))
	}
	starts, err := DirectoryNotBefore(dir, TokenTypeBlindRSA)
	mustNoErr(t, err)
	if len(starts) != 2 || starts[0].Unix() != 1900000000 || starts[1].Unix() != 1700000000 {
		t.Fatalf("type 2 not-before %v, want [1900000000 1700000000]", starts)
	}
	// RFC 9578 §4: the first key whose not-before has passed is the one issuing now (a).
	now := time.Unix(1800000000, 0)
	first := -1
	for i, s := range starts {
		if !s.After(now) {
			first = i
			break
		}
	}
	if first != 1 {
		t.Fatalf("the first started key is %d, want 1", first)
	}
	keys, err = DirectoryTokenKeys(dir, TokenTypeVoprfP384)
	mustNoErr(t, err)
	starts, err = DirectoryNotBefore(dir, TokenTypeVoprfP384)
	mustNoErr(t, err)
	if len(keys) != 1 || !bytes.Equal(keys[0], p384.PublicKey()) || len(starts) != 1 || starts[0].Unix() != 7 {
		t.Fatalf("type 1: keys %x, not-before %v", keys, starts)
	}
	keys, err = DirectoryTokenKeys(dir, TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	starts, err = DirectoryNotBefore(dir, TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	if len(keys) != 0 || len(starts) != 0 {
		t.Fatalf("type 5 of a directory without any: %d keys, not-before %v", len(keys), starts)
	}

	// More keys than the first call makes room for (the retry with the count the library
	// answers); without not-before, with 0, and one beyond int64 seconds.
	var entries []dirEntry
	var want []*Issuer
	for i := 0; i < 3*directoryKeysGuess; i++ {
		issuer, err := GenerateVoprfIssuer(TokenTypeVoprfRistretto255)
		mustNoErr(t, err)
		defer issuer.Close()
		want = append(want, issuer)
		notBefore := fmt.Sprint(1000 + i)
		switch i {
		case 1:
			notBefore = ""
		case 2:
			notBefore = "0"
		case 3:
			notBefore = "18446744073709551615"
		}
		entries = append(entries, dirEntry{TokenTypeVoprfRistretto255, issuer.PublicKey(), notBefore})
	}
	dir = dirOfEntries(entries...)
	keys, err = DirectoryTokenKeys(dir, TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	starts, err = DirectoryNotBefore(dir, TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	if len(keys) != len(want) || len(starts) != len(want) {
		t.Fatalf("%d keys, %d not-before, want %d", len(keys), len(starts), len(want))
	}
	for i := range want {
		if !bytes.Equal(keys[i], want[i].PublicKey()) {
			t.Fatalf("key %d differs", i)
		}
		switch i {
		case 1, 2:
			if !starts[i].IsZero() {
				t.Fatalf("not-before %d: %v, want the zero time", i, starts[i])
			}
		case 3:
			if starts[i].Unix() != math.MaxInt64 {
				t.Fatalf("not-before %d: %d, want the latest time", i, starts[i].Unix())
			}
		default:
			if starts[i].Unix() != int64(1000+i) {
				t.Fatalf("not-before %d: %v, want %d", i, starts[i], 1000+i)
			}
		}
	}
	// A key answered is its own slice: appending to one does not write into the next.
	_ = append(keys[0], 0xff)
	if !bytes.Equal(keys[1], want[1].PublicKey()) {
		t.Fatal("appending to one key changed the next")
	}

	for _, c := range []struct {
		name      string
		dir       []byte
		tokenType uint16
		want      error
	}{
		{"type 3", dirOf(a.PublicKey()), 3, ErrUnsupportedToken},
		{"not JSON", []byte("{"), TokenTypeBlindRSA, ErrInvalidInput},
		{"empty", nil, TokenTypeBlindRSA, ErrInvalidInput},
		{"not-before a string", []byte(`{"token-keys": [{"token-type": 2, "token-key": "AA", "not-before": "0"}]}`),
			TokenTypeBlindRSA, ErrInvalidInput},
		{"a bad type 2 key", dirOfEntries(dirEntry{TokenTypeBlindRSA, []byte("not a key"), "0"}), TokenTypeBlindRSA, ErrInvalidKey},
		{"a bad type 1 key", directoryJSON(a.PublicKey(), 0), TokenTypeVoprfP384, ErrInvalidKey},
	} {
		keys, err := DirectoryTokenKeys(c.dir, c.tokenType)
		starts, err2 := DirectoryNotBefore(c.dir, c.tokenType)
		var e, e2 *Error
		if keys != nil || starts != nil || !errors.Is(err, c.want) || !errors.Is(err2, c.want) ||
			!errors.As(err, &e) || e.Op() != "pp_directory_token_keys" ||
			!errors.As(err2, &e2) || e2.Op() != "pp_directory_not_before" {
			t.Errorf("%s: %v, %v; %v, %v; want %v", c.name, keys, err, starts, err2, c.want)
		}
	}
	// The bad type 1 entry does not stop the type 2 keys of the same directory.
	starts, err = DirectoryNotBefore(directoryJSON(a.PublicKey(), 1700000000), TokenTypeBlindRSA)
	mustNoErr(t, err)
	if len(starts) != 1 || starts[0].Unix() != 1700000000 {
		t.Fatalf("not-before %v", starts)
	}
}

// SetKeys replaces the keys all at once and keeps the spends; closed handles answer ErrClosed;
// a VOPRF issuer's redeemer refuses public keys and keeps its private key.
func TestRedeemerSetKeys(t *testing.T) {
	a, b := testIssuer(t), testIssuer2(t)
	challenge := defaultChallenge(t)
	verifierA, err := NewVerifier(a.PublicKey())
	mustNoErr(t, err)
	defer verifierA.Close()
	verifierB, err := NewVerifier(b.PublicKey())
	mustNoErr(t, err)
	defer verifierB.Close()
	verifierAB, err := NewVerifierFromPEM(append(spkiPEM(a.PublicKey()), spkiPEM(b.PublicKey())...))
	mustNoErr(t, err)
	defer verifierAB.Close()

	r, err := NewRedeemer(verifierA, "memory:")
	mustNoErr(t, err)
	defer r.Close()
	spentA, tokenB := newToken(t, a, challenge), newToken(t, b, challenge)
	mustNoErr(t, r.Redeem(spentA, challenge))
	wantErr(t, r.Redeem(tokenB, challenge), ErrVerificationFailed)

	mustNoErr(t, r.SetKeys(verifierB))
	wantErr(t, r.Redeem(newToken(t, a, challenge), challenge), ErrVerificationFailed)
	wantErr(t, r.Redeem(spentA, challenge), ErrVerificationFailed) // verified first: a is gone
	mustNoErr(t, r.Redeem(tokenB, challenge))

	mustNoErr(t, r.SetKeys(verifierAB))
	wantErr(t, r.Redeem(spentA, challenge), ErrAlreadySpent) // spent before the two replacements
	wantErr(t, r.Redeem(tokenB, challenge), ErrAlreadySpent)
	mustNoErr(t, r.Redeem(newToken(t, a, challenge), challenge))

	// The redeemer keeps its own reference to the keys: the verifier may be closed after.
	scratch, err := NewVerifier(b.PublicKey())
	mustNoErr(t, err)
	mustNoErr(t, r.SetKeys(scratch))
	mustNoErr(t, scratch.Close())
	mustNoErr(t, r.Redeem(newToken(t, b, challenge), challenge))
	wantErr(t, r.Redeem(newToken(t, a, challenge), challenge), ErrVerificationFailed)

	// A closed verifier or redeemer: ErrClosed, not an *Error, and the keys stay.
	err = r.SetKeys(scratch)
	var e *Error
	if !errors.Is(err, ErrClosed) || errors.As(err, &e) {
		t.Fatalf("SetKeys of a closed verifier: %v", err)
	}
	mustNoErr(t, r.Redeem(newToken(t, b, challenge), challenge))
	closed, err := NewRedeemer(verifierA, "memory:")
	mustNoErr(t, err)
	mustNoErr(t, closed.Close())
	err = closed.SetKeys(verifierB)
	if !errors.Is(err, ErrClosed) || errors.As(err, &e) {
		t.Fatalf("SetKeys of a closed redeemer: %v", err)
	}

	// A redeemer of an RSA issuer verifies with its public key: replaced like any other.
	fromRSA, err := NewRedeemerFromIssuer(a, "memory:")
	mustNoErr(t, err)
	defer fromRSA.Close()
	mustNoErr(t, fromRSA.SetKeys(verifierB))
	mustNoErr(t, fromRSA.Redeem(newToken(t, b, challenge), challenge))
	wantErr(t, fromRSA.Redeem(newToken(t, a, challenge), challenge), ErrVerificationFailed)

	// A VOPRF issuer's: ErrInvalidKey, and it still redeems its own tokens.
	for _, typ := range voprfTypes {
		issuer, err := GenerateVoprfIssuer(typ.tokenType)
		mustNoErr(t, err)
		defer issuer.Close()
		private, err := NewRedeemerFromIssuer(issuer, "memory:")
		mustNoErr(t, err)
		defer private.Close()
		vc := voprfChallenge(t, typ.tokenType)
		spent := newVoprfToken(t, issuer, vc)
		mustNoErr(t, private.Redeem(spent, vc))
		err = private.SetKeys(verifierAB)
		if !errors.Is(err, ErrInvalidKey) || !errors.As(err, &e) || e.Op() != "pp_redeemer_set_keys" {
			t.Fatalf("%s: SetKeys of a VOPRF issuer's redeemer: %v", typ.name, err)
		}
		mustNoErr(t, private.Redeem(newVoprfToken(t, issuer, vc), vc))
		wantErr(t, private.Redeem(spent, vc), ErrAlreadySpent)
		wantErr(t, private.Redeem(newToken(t, a, challenge), challenge), ErrVerificationFailed)
	}
}
