package privacypass

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const vectorsPath = "../../tests/vectors/rfc9578-type2-blind-rsa.json"

type vector map[string][]byte

func loadVectors(t testing.TB) []vector {
	t.Helper()
	return loadVectorsFrom(t, vectorsPath)
}

// loadVectorsFrom reads a JSON array of flat objects whose values are all hex strings.
func loadVectorsFrom(t testing.TB, path string) []vector {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]string
	if err := json.Unmarshal(text, &raw); err != nil {
		t.Fatal(err)
	}
	vectors := make([]vector, len(raw))
	for i, fields := range raw {
		vectors[i] = vector{}
		for name, value := range fields {
			b, err := hex.DecodeString(value)
			if err != nil {
				t.Fatalf("vector %d %s: %v", i, name, err)
			}
			vectors[i][name] = b
		}
	}
	return vectors
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
}

func spkiPEM(spki []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
}

func directoryJSON(spki []byte, notBefore int64) []byte {
	return []byte(fmt.Sprintf(`{"issuer-request-uri": "https://issuer.example/token-request",
 "token-keys": [
  {"token-type": 1, "token-key": "AAAA", "not-before": 0},
  {"token-type": 2, "token-key": %q, "not-before": %d}
 ]}`, base64.URLEncoding.EncodeToString(spki), notBefore))
}

// newToken makes a fresh token for challenge from issuer, through the client API.
func newToken(t testing.TB, issuer *Issuer, challenge []byte) []byte {
	t.Helper()
	client, err := NewClient(issuer.PublicKey())
	mustNoErr(t, err)
	defer client.Close()
	pending, err := client.Request(challenge)
	mustNoErr(t, err)
	defer pending.Close()
	response, err := issuer.Issue(pending.Request())
	mustNoErr(t, err)
	token, err := pending.Finalize(response)
	mustNoErr(t, err)
	return token
}

var (
	sharedIssuerOnce sync.Once
	sharedIssuer     *Issuer
	sharedIssuerErr  error
)

// testIssuer is one generated issuer shared by the tests (generating takes a fraction of a
// second).
func testIssuer(t testing.TB) *Issuer {
	sharedIssuerOnce.Do(func() { sharedIssuer, sharedIssuerErr = GenerateIssuer() })
	mustNoErr(t, sharedIssuerErr)
	return sharedIssuer
}

func TestVersion(t *testing.T) {
	if Version() != HeaderVersion {
		t.Fatalf("library %s, header %s", Version(), HeaderVersion)
	}
}

// Every RFC 9578 type 2 vector, byte for byte, through every way in.
func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	if len(vectors) != 5 {
		t.Fatalf("%d vectors, want 5", len(vectors))
	}
	for i, v := range vectors {
		v := v
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			token, challenge, request, response := v["token"], v["token_challenge"], v["token_request"], v["token_response"]
			keyID := token[66:98]

			issuer, err := NewIssuerFromPEM(v["skS"])
			mustNoErr(t, err)
			defer issuer.Close()
			if !bytes.Equal(issuer.PublicKey(), v["pkS"]) {
				t.Error("public key differs from pkS")
			}
			if !bytes.Equal(issuer.TokenKeyID(), keyID) {
				t.Error("token_key_id differs from the token's")
			}
			got, err := issuer.Issue(request)
			mustNoErr(t, err)
			if !bytes.Equal(got, response) {
				t.Error("Issue: response differs")
			}
			got, err = issuer.IssueBlinded(keyID, request)
			mustNoErr(t, err)
			if !bytes.Equal(got, response) {
				t.Error("IssueBlinded (TokenRequest): response differs")
			}
			got, err = issuer.IssueBlinded(keyID, request[3:])
			mustNoErr(t, err)
			if !bytes.Equal(got, response) {
				t.Error("IssueBlinded (blinded message): response differs")
			}

			client, err := NewClient(v["pkS"])
			mustNoErr(t, err)
			defer client.Close()
			pending, err := client.RequestWithRandomness(challenge, v["nonce"], v["salt"], v["blind"])
			mustNoErr(t, err)
			defer pending.Close()
			if !bytes.Equal(pending.Request(), request) {
				t.Error("TokenRequest differs")
			}
			got, err = pending.Finalize(response)
			mustNoErr(t, err)
			if !bytes.Equal(got, token) {
				t.Error("Token differs")
			}

			other, err := Challenge{IssuerName: "other.example"}.Encode()
			mustNoErr(t, err)
			fromSPKI, err := NewVerifier(v["pkS"])
			mustNoErr(t, err)
			defer fromSPKI.Close()
			fromPEM, err := NewVerifierFromPEM(spkiPEM(v["pkS"]))
			mustNoErr(t, err)
			defer fromPEM.Close()
			fromDir, err := NewVerifierFromDirectory(directoryJSON(v["pkS"], 0))
			mustNoErr(t, err)
			defer fromDir.Close()
			for _, verifier := range []*Verifier{fromSPKI, fromPEM, fromDir} {
				mustNoErr(t, verifier.Verify(token, challenge))
				mustNoErr(t, verifier.Verify(token, nil))
				wantErr(t, verifier.Verify(token, other), ErrVerificationFailed)
			}

			authorization, err := EncodeAuthorization(token)
			mustNoErr(t, err)
			if !strings.HasPrefix(authorization, `PrivateToken token="`) {
				t.Errorf("Authorization %q", authorization)
			}
			parsed, err := ParseAuthorization(authorization)
			mustNoErr(t, err)
			if !bytes.Equal(parsed, token) {
				t.Error("ParseAuthorization differs")
			}
			mustNoErr(t, fromSPKI.VerifyAuthorization(authorization, challenge))

			redeemer, err := NewRedeemer(fromSPKI, "memory:")
			mustNoErr(t, err)
			defer redeemer.Close()
			mustNoErr(t, redeemer.Redeem(token, challenge))
			wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
			wantErr(t, redeemer.RedeemAuthorization(authorization, nil), ErrAlreadySpent)
		})
	}
}

// The whole protocol in one process: issue, finalize, verify, redeem, double spend.
func TestFullCycle(t *testing.T) {
	for _, store := range []string{"memory:", "memory:1000", "rocksdb:" + filepath.Join(t.TempDir(), "spends")} {
		store := store
		t.Run(store[:strings.IndexByte(store, ':')], func(t *testing.T) {
			issuer := testIssuer(t)
			key := issuer.PublicKey()
			context := bytes.Repeat([]byte{0x5a}, RedemptionContextLen)
			challenge, err := Challenge{
				IssuerName:        "issuer.example",
				RedemptionContext: context,
				OriginInfo:        []string{"origin.example", "other.example"},
			}.Encode()
			mustNoErr(t, err)

			www, err := WWWAuthenticateMaxAge(challenge, key, time.Hour)
			mustNoErr(t, err)
			if !strings.HasPrefix(www, `PrivateToken challenge="`) || !strings.HasSuffix(www, `, max-age="3600"`) {
				t.Errorf("WWW-Authenticate %q", www)
			}
			plain, err := WWWAuthenticate(challenge, key)
			mustNoErr(t, err)
			if plain != strings.TrimSuffix(www, `, max-age="3600"`) {
				t.Errorf("WWW-Authenticate without max-age %q", plain)
			}

			client, err := NewClient(key)
			mustNoErr(t, err)
			defer client.Close()
			pending, err := client.Request(challenge)
			mustNoErr(t, err)
			defer pending.Close()
			if len(pending.Request()) != TokenRequestLen {
				t.Fatalf("TokenRequest of %d bytes", len(pending.Request()))
			}
			response, err := issuer.Issue(pending.Request())
			mustNoErr(t, err)
			if len(response) != TokenResponseLen {
				t.Fatalf("TokenResponse of %d bytes", len(response))
			}
			token, err := pending.Finalize(response)
			mustNoErr(t, err)
			if len(token) != TokenLen {
				t.Fatalf("Token of %d bytes", len(token))
			}
			again, err := pending.Finalize(response) // finalizing twice is allowed
			mustNoErr(t, err)
			if !bytes.Equal(again, token) {
				t.Error("second Finalize differs")
			}
			authorization, err := EncodeAuthorization(token)
			mustNoErr(t, err)

			verifier, err := NewVerifier(key)
			mustNoErr(t, err)
			mustNoErr(t, verifier.VerifyAuthorization(authorization, challenge))
			mustNoErr(t, verifier.Verify(token, challenge))
			redeemer, err := NewRedeemer(verifier, store)
			mustNoErr(t, err)
			defer redeemer.Close()
			mustNoErr(t, verifier.Close()) // the redeemer keeps what it needs

			mustNoErr(t, redeemer.RedeemAuthorization(authorization, challenge))
			err = redeemer.RedeemAuthorization(authorization, challenge)
			wantErr(t, err, ErrAlreadySpent)
			var ppErr *Error
			if !errors.As(err, &ppErr) || ppErr.Code() != CodeAlreadySpent || int(ppErr.Code()) != -32021 ||
				ppErr.HTTPStatus() != 403 || ppErr.Op() != "pp_redeemer_redeem_authorization" {
				t.Errorf("double spend: %#v", ppErr)
			}
			if err.Error() != "privacypass: pp_redeemer_redeem_authorization: token already spent (-32021)" {
				t.Errorf("message %q", err.Error())
			}
			wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
			wantErr(t, redeemer.Redeem(token, nil), ErrAlreadySpent)
		})
	}
}

func TestRocksDBSpendsAreDurable(t *testing.T) {
	issuer := testIssuer(t)
	challenge, err := Challenge{IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	token := newToken(t, issuer, challenge)
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	defer verifier.Close()
	url := "rocksdb:" + filepath.Join(t.TempDir(), "durable")
	redeemer, err := NewRedeemer(verifier, url)
	mustNoErr(t, err)
	mustNoErr(t, redeemer.Redeem(token, challenge))
	mustNoErr(t, redeemer.Close())
	redeemer, err = NewRedeemer(verifier, url)
	mustNoErr(t, err)
	defer redeemer.Close()
	wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
}

// Many goroutines share one verifier, one redeemer, one issuer and one client.
func TestConcurrentUse(t *testing.T) {
	issuer := testIssuer(t)
	challenge, err := Challenge{IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	defer verifier.Close()
	redeemer, err := NewRedeemer(verifier, "memory:")
	mustNoErr(t, err)
	defer redeemer.Close()
	client, err := NewClient(issuer.PublicKey())
	mustNoErr(t, err)
	defer client.Close()

	const goroutines, perGoroutine = 16, 25
	tokens := make([][]byte, goroutines)
	var wg sync.WaitGroup
	// Concurrent issuance: one issuer, one client.
	for g := 0; g < goroutines; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			pending, err := client.Request(challenge)
			if err != nil {
				t.Error(err)
				return
			}
			defer pending.Close()
			response, err := issuer.Issue(pending.Request())
			if err != nil {
				t.Error(err)
				return
			}
			tokens[g], err = pending.Finalize(response)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Concurrent verification: every goroutine verifies every token, and a forged one fails.
	forged := append([]byte(nil), tokens[0]...)
	forged[len(forged)-1] ^= 1
	var verified int64
	for g := 0; g < goroutines; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				if err := verifier.Verify(tokens[(g+i)%goroutines], challenge); err != nil {
					t.Error(err)
					return
				}
				atomic.AddInt64(&verified, 1)
				if !errors.Is(verifier.Verify(forged, challenge), ErrVerificationFailed) {
					t.Error("forged token accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
	if verified != goroutines*perGoroutine {
		t.Fatalf("%d verifications, want %d", verified, goroutines*perGoroutine)
	}

	// Concurrent redemption: every goroutine redeems every token; each is accepted exactly once.
	var accepted, spent int64
	for g := 0; g < goroutines; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < goroutines; i++ {
				err := redeemer.Redeem(tokens[(g+i)%goroutines], challenge)
				switch {
				case err == nil:
					atomic.AddInt64(&accepted, 1)
				case errors.Is(err, ErrAlreadySpent):
					atomic.AddInt64(&spent, 1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if accepted != goroutines || spent != goroutines*(goroutines-1) {
		t.Fatalf("%d accepted, %d already spent; want %d and %d", accepted, spent, goroutines, goroutines*(goroutines-1))
	}
}

// Close waits for calls in flight; calls after it answer ErrClosed, whatever goroutine runs them.
func TestCloseWhileInUse(t *testing.T) {
	issuer := testIssuer(t)
	token := newToken(t, issuer, defaultChallenge(t))
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				err := verifier.Verify(token, nil)
				if err == ErrClosed {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	mustNoErr(t, verifier.Close())
	wg.Wait()
	wantErr(t, verifier.Verify(token, nil), ErrClosed)
}

// A store that cannot record a spend answers ErrStoreUnavailable and records nothing: a full
// memory store refuses new spends (it never forgets old ones), and a Redis store that cannot be
// reached is refused when the redeemer is made.
func TestStoreUnavailable(t *testing.T) {
	issuer := testIssuer(t)
	challenge := defaultChallenge(t)
	first, second := newToken(t, issuer, challenge), newToken(t, issuer, challenge)
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	defer verifier.Close()

	full, err := NewRedeemer(verifier, "memory:1")
	mustNoErr(t, err)
	defer full.Close()
	mustNoErr(t, full.Redeem(first, challenge))
	for i := 0; i < 2; i++ { // nothing was recorded: the same answer again
		err = full.Redeem(second, challenge)
		wantErr(t, err, ErrStoreUnavailable)
		var e *Error
		if !errors.As(err, &e) || int(e.Code()) != -32050 || e.HTTPStatus() != 503 ||
			e.Code().JSONRPCCode() != -32050 || e.Op() != "pp_redeemer_redeem" {
			t.Errorf("store unavailable: %#v", e)
		}
	}
	wantErr(t, full.Redeem(first, challenge), ErrAlreadySpent)

	// A port nothing listens on (bound, then released).
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	mustNoErr(t, err)
	addr := listener.Addr().String()
	mustNoErr(t, listener.Close())
	for _, url := range []string{
		"redis://" + addr + "?timeout_ms=500",
		"redis://user:secret@" + addr + "/2?timeout_ms=500",
		"redis+cluster://" + addr + "," + addr + "?timeout_ms=500",
	} {
		_, err := NewRedeemer(verifier, url)
		wantErr(t, err, ErrStoreUnavailable)
	}
	_, err = NewRedeemer(verifier, "redis://")
	wantErr(t, err, ErrInvalidStoreURL)
}

// A PendingToken keeps its own reference to the client's key: it finalizes after the Client
// that made it is closed (and forgotten).
func TestPendingTokenOutlivesItsClient(t *testing.T) {
	issuer := testIssuer(t)
	challenge := defaultChallenge(t)
	client, err := NewClient(issuer.PublicKey())
	mustNoErr(t, err)
	pending, err := client.Request(challenge)
	mustNoErr(t, err)
	defer pending.Close()
	mustNoErr(t, client.Close())
	_, err = client.Request(challenge)
	wantErr(t, err, ErrClosed)
	client = nil
	runtime.GC()
	response, err := issuer.Issue(pending.Request())
	mustNoErr(t, err)
	token, err := pending.Finalize(response)
	mustNoErr(t, err)
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	defer verifier.Close()
	mustNoErr(t, verifier.Verify(token, challenge))
}

func defaultChallenge(t testing.TB) []byte {
	challenge, err := Challenge{IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	return challenge
}

// max-age is whole seconds, rounded up: a fraction of a second never becomes max-age="0".
func TestWWWAuthenticateMaxAge(t *testing.T) {
	key := testIssuer(t).PublicKey()
	challenge := defaultChallenge(t)
	plain, err := WWWAuthenticate(challenge, key)
	mustNoErr(t, err)
	for _, c := range []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "0"},
		{time.Nanosecond, "1"},
		{500 * time.Millisecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Nanosecond, "2"},
		{1500 * time.Millisecond, "2"},
		{time.Hour, "3600"},
		{time.Duration(1<<63 - 1), "9223372037"}, // the largest Duration, rounded up
	} {
		got, err := WWWAuthenticateMaxAge(challenge, key, c.maxAge)
		mustNoErr(t, err)
		if want := plain + `, max-age="` + c.want + `"`; got != want {
			t.Errorf("max-age %v: got %q, want %q", c.maxAge, got, want)
		}
	}
	_, err = WWWAuthenticateMaxAge(challenge, key, -time.Nanosecond)
	wantErr(t, err, ErrInvalidInput)
}

// The zero TokenType is TokenTypeBlindRSA; any other value is encoded as given.
func TestChallengeTokenType(t *testing.T) {
	zero, err := Challenge{IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	two, err := Challenge{TokenType: TokenTypeBlindRSA, IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	if !bytes.Equal(zero, two) || !bytes.Equal(zero[:2], []byte{0x00, 0x02}) {
		t.Errorf("TokenType 0 encodes as %x, TokenType 2 as %x", zero, two)
	}
	one, err := Challenge{TokenType: 1, IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	if !bytes.Equal(one[:2], []byte{0x00, 0x01}) || !bytes.Equal(one[2:], two[2:]) {
		t.Errorf("TokenType 1 encodes as %x", one)
	}
}

func TestErrorPaths(t *testing.T) {
	issuer := testIssuer(t)
	key := issuer.PublicKey()
	challenge := defaultChallenge(t)
	token := newToken(t, issuer, challenge)
	otherType := append([]byte{0, 3}, token[2:]...) // a token type not served here
	verifier, err := NewVerifier(key)
	mustNoErr(t, err)
	defer verifier.Close()
	client, err := NewClient(key)
	mustNoErr(t, err)
	defer client.Close()

	// Keys.
	_, err = NewVerifier(key[:10])
	wantErr(t, err, ErrInvalidKey)
	_, err = NewVerifier(nil)
	wantErr(t, err, ErrInvalidKey)
	_, err = NewVerifierFromPEM([]byte("no key here"))
	wantErr(t, err, ErrInvalidKey)
	_, err = NewVerifierFromPEM([]byte{0xff, 0xfe})
	wantErr(t, err, ErrInvalidInput)
	_, err = NewVerifierFromDirectory([]byte("[]"))
	wantErr(t, err, ErrInvalidInput)
	_, err = NewIssuerFromPEM([]byte("nope"))
	wantErr(t, err, ErrInvalidKey)
	_, err = NewClient(key[:len(key)-1])
	wantErr(t, err, ErrInvalidKey)

	// Stores.
	_, err = NewRedeemer(verifier, "ftp://nowhere")
	wantErr(t, err, ErrInvalidStoreURL)
	_, err = NewRedeemer(verifier, "memory:\x00")
	wantErr(t, err, ErrInvalidStoreURL)

	// Challenges and headers.
	_, err = Challenge{IssuerName: "issuer.example", RedemptionContext: []byte{1, 2, 3}}.Encode()
	wantErr(t, err, ErrInvalidInput)
	_, err = Challenge{}.Encode()
	wantErr(t, err, ErrInvalidInput)
	_, err = WWWAuthenticate(challenge[:3], key)
	wantErr(t, err, ErrInvalidInput)
	_, err = WWWAuthenticate(challenge, nil)
	wantErr(t, err, ErrInvalidInput)
	_, err = EncodeAuthorization(token[:100])
	wantErr(t, err, ErrInvalidParams)
	_, err = EncodeAuthorization(otherType)
	wantErr(t, err, ErrUnsupportedToken)
	_, err = ParseAuthorization("Bearer abc")
	wantErr(t, err, ErrInvalidParams)
	parsed, err := ParseAuthorization("PrivateToken token=AQID")
	mustNoErr(t, err)
	if !bytes.Equal(parsed, []byte{1, 2, 3}) {
		t.Errorf("parsed %x", parsed)
	}
	long := strings.Repeat("A", 4000)
	parsed, err = ParseAuthorization("PrivateToken token=" + long) // longer than a token: the buffer grows
	mustNoErr(t, err)
	if len(parsed) != 3000 {
		t.Errorf("parsed %d bytes", len(parsed))
	}

	// Client and issuer.
	_, err = client.Request(challenge[:len(challenge)-1])
	wantErr(t, err, ErrInvalidInput)
	type1, err := Challenge{TokenType: 1, IssuerName: "issuer.example"}.Encode()
	mustNoErr(t, err)
	_, err = client.Request(type1)
	wantErr(t, err, ErrUnsupportedToken)
	_, err = client.RequestWithRandomness(challenge, make([]byte, 31), make([]byte, SaltLen), []byte{3})
	wantErr(t, err, ErrInvalidInput)
	pending, err := client.Request(challenge)
	mustNoErr(t, err)
	defer pending.Close()
	_, err = pending.Finalize(make([]byte, 10))
	wantErr(t, err, ErrInvalidInput)
	_, err = pending.Finalize(make([]byte, TokenResponseLen))
	wantErr(t, err, ErrVerificationFailed)
	_, err = issuer.Issue([]byte{0, 2, 3})
	wantErr(t, err, ErrUnprocessableBlindedToken)
	_, err = issuer.IssueBlinded(make([]byte, TokenKeyIDLen), pending.Request())
	wantErr(t, err, ErrUnknownIssuanceKey)
	_, err = issuer.IssueBlinded(issuer.TokenKeyID(), pending.Request()[:10])
	wantErr(t, err, ErrUnprocessableBlindedToken)

	// Verification. Bytes of type 2 that are not a token: ErrInvalidParams (-32602); a token of
	// another type: ErrUnsupportedToken (-32022).
	wantErr(t, verifier.Verify(token[:100], nil), ErrInvalidParams)
	wantErr(t, verifier.Verify(append(append([]byte(nil), token...), 0), nil), ErrInvalidParams)
	wantErr(t, verifier.Verify(nil, nil), ErrInvalidParams)
	wantErr(t, verifier.Verify(otherType, nil), ErrUnsupportedToken)
	wantErr(t, verifier.Verify(otherType[:100], nil), ErrUnsupportedToken)
	truncated, err := EncodeAuthorization(token)
	mustNoErr(t, err)
	truncated = truncated[:len(truncated)-20] + `"`
	wantErr(t, verifier.VerifyAuthorization(truncated, nil), ErrInvalidParams)
	func() {
		redeemer, err := NewRedeemer(verifier, "memory:")
		mustNoErr(t, err)
		defer redeemer.Close()
		err = redeemer.Redeem(token[:100], nil)
		wantErr(t, err, ErrInvalidParams)
		var e *Error
		if !errors.As(err, &e) || e.Code().JSONRPCCode() != -32602 || e.HTTPStatus() != 400 {
			t.Errorf("a truncated token: %v", err)
		}
		err = redeemer.Redeem(otherType, nil)
		wantErr(t, err, ErrUnsupportedToken)
		if !errors.As(err, &e) || e.Code().JSONRPCCode() != -32022 {
			t.Errorf("a token of another type: %v", err)
		}
		wantErr(t, redeemer.RedeemAuthorization(truncated, nil), ErrInvalidParams)
	}()
	wantErr(t, verifier.VerifyAuthorization("Bearer abc", nil), ErrInvalidParams)
	other, err := GenerateIssuer()
	mustNoErr(t, err)
	defer other.Close()
	wantErr(t, verifier.Verify(newToken(t, other, challenge), nil), ErrVerificationFailed)

	// Use after Close, for every handle; Close twice is fine.
	i2, err := GenerateIssuer()
	mustNoErr(t, err)
	c2, err := NewClient(key)
	mustNoErr(t, err)
	p2, err := c2.Request(challenge)
	mustNoErr(t, err)
	v2, err := NewVerifier(key)
	mustNoErr(t, err)
	r2, err := NewRedeemer(v2, "memory:")
	mustNoErr(t, err)
	for _, closer := range []interface{ Close() error }{i2, c2, p2, v2, r2, i2, c2, p2, v2, r2} {
		mustNoErr(t, closer.Close())
	}
	_, err = i2.Issue(pending.Request())
	wantErr(t, err, ErrClosed)
	_, err = i2.IssueBlinded(issuer.TokenKeyID(), pending.Request())
	wantErr(t, err, ErrClosed)
	if len(i2.PublicKey()) != PublicKeyLen || len(i2.TokenKeyID()) != TokenKeyIDLen {
		t.Error("the issuer's public key is gone after Close")
	}
	_, err = c2.Request(challenge)
	wantErr(t, err, ErrClosed)
	_, err = c2.RequestWithRandomness(challenge, nil, nil, nil)
	wantErr(t, err, ErrClosed)
	_, err = p2.Finalize(make([]byte, TokenResponseLen))
	wantErr(t, err, ErrClosed)
	wantErr(t, v2.Verify(token, nil), ErrClosed)
	wantErr(t, v2.VerifyAuthorization("x", nil), ErrClosed)
	_, err = NewRedeemer(v2, "memory:")
	wantErr(t, err, ErrClosed)
	wantErr(t, r2.Redeem(token, nil), ErrClosed)
	wantErr(t, r2.RedeemAuthorization("x", nil), ErrClosed)
}

func TestCodes(t *testing.T) {
	for _, c := range []struct {
		code    Code
		value   int
		jsonrpc int
		http    int
		err     error
	}{
		{CodeOK, 0, 0, 200, nil},
		{CodeVerificationFailed, -32020, -32020, 403, ErrVerificationFailed},
		{CodeAlreadySpent, -32021, -32021, 403, ErrAlreadySpent},
		{CodeUnsupportedToken, -32022, -32022, 400, ErrUnsupportedToken},
		{CodeUnknownIssuanceKey, -32023, -32023, 404, ErrUnknownIssuanceKey},
		{CodeUnprocessableBlindedToken, -32024, -32024, 422, ErrUnprocessableBlindedToken},
		{CodeUnauthenticated, -32030, -32030, 401, ErrUnauthenticated},
		{CodeForbidden, -32031, -32031, 403, ErrForbidden},
		{CodeIdempotencyInFlight, -32032, -32032, 409, ErrIdempotencyInFlight},
		{CodeIdempotencyMismatch, -32033, -32033, 422, ErrIdempotencyMismatch},
		{CodeRateLimited, -32034, -32034, 429, ErrRateLimited},
		{CodeIssueAtRedemptionRoute, -32040, -32040, 400, ErrIssueAtRedemptionRoute},
		{CodeMethodNotAllowed, -32041, -32041, 405, ErrMethodNotAllowed},
		{CodeTooLarge, -32042, -32042, 413, ErrTooLarge},
		{CodeStoreUnavailable, -32050, -32050, 503, ErrStoreUnavailable},
		{CodeInvalidRequest, -32600, -32600, 400, ErrInvalidRequest},
		{CodeMethodNotFound, -32601, -32601, 400, ErrMethodNotFound},
		{CodeInvalidParams, -32602, -32602, 400, ErrInvalidParams},
		{CodeInternal, -32603, -32603, 500, ErrInternal},
		{CodeParseError, -32700, -32700, 400, ErrParseError},
		{CodeNullArgument, 1, -32603, 500, ErrNullArgument},
		{CodeBufferTooSmall, 2, -32603, 500, ErrBufferTooSmall},
		{CodeInvalidInput, 3, -32603, 500, ErrInvalidInput},
		{CodeInvalidKey, 4, -32603, 500, ErrInvalidKey},
		{CodeInvalidStoreURL, 5, -32603, 500, ErrInvalidStoreURL},
		{CodePanic, 6, -32603, 500, ErrPanic},
		{CodePrivateTokenType, 7, -32603, 500, ErrPrivateTokenType},
	} {
		if int(c.code) != c.value || c.code.JSONRPCCode() != c.jsonrpc || c.code.HTTPStatus() != c.http {
			t.Errorf("%v: value %d, JSON-RPC %d, HTTP %d", c.code, int(c.code), c.code.JSONRPCCode(), c.code.HTTPStatus())
		}
		if c.code.String() == "unknown result code" {
			t.Errorf("%d has no description", c.value)
		}
		if c.err != nil {
			var e *Error
			if !errors.As(c.err, &e) || e.Code() != c.code || !errors.Is(&Error{code: c.code, op: "x"}, c.err) {
				t.Errorf("sentinel of %v", c.code)
			}
			if errors.Is(&Error{code: c.code}, ErrClosed) || (c.code != CodeAlreadySpent && errors.Is(c.err, ErrAlreadySpent)) {
				t.Errorf("sentinel of %v matches another", c.code)
			}
		}
	}
	if CodeAlreadySpent.String() != "token already spent" || CodeOK.String() != "success" {
		t.Errorf("descriptions %q, %q", CodeAlreadySpent, CodeOK)
	}
	if Code(424242).String() != "unknown result code" {
		t.Error("unknown code")
	}
	// ErrClosed has no result code: it is not an *Error (as documented).
	var e *Error
	if errors.As(ErrClosed, &e) || !errors.Is(fmt.Errorf("wrapped: %w", ErrClosed), ErrClosed) {
		t.Error("ErrClosed is an *Error, or errors.Is misses it")
	}
}

// freedCounts reads the per-kind counts of C handles freed (freed), in a fixed order.
func freedCounts() [5]int64 {
	return [5]int64{freed.verifiers.Load(), freed.redeemers.Load(), freed.issuers.Load(),
		freed.clients.Load(), freed.pendingTokens.Load()}
}

var freedKinds = [5]string{"Verifier", "Redeemer", "Issuer", "Client", "PendingToken"}

// settleFinalizers runs the garbage collector until the free counts stay the same for a few
// rounds (the finalizers of unreachable handles have run) and answers them.
func settleFinalizers() [5]int64 {
	counts := freedCounts()
	for still := 0; still < 3; {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		now := freedCounts()
		if now == counts {
			still++
		} else {
			still = 0
		}
		counts = now
	}
	return counts
}

// makeHandles makes n handles of each kind and closes them when closeThem is set; otherwise it
// drops them, reachable from nowhere once it returns.
//
//go:noinline
func makeHandles(t *testing.T, n int, closeThem bool) {
	v := loadVectors(t)[0]
	challenge := defaultChallenge(t)
	for i := 0; i < n; i++ {
		issuer, err := NewIssuerFromPEM(v["skS"])
		mustNoErr(t, err)
		verifier, err := NewVerifier(v["pkS"])
		mustNoErr(t, err)
		redeemer, err := NewRedeemer(verifier, "memory:")
		mustNoErr(t, err)
		client, err := NewClient(v["pkS"])
		mustNoErr(t, err)
		pending, err := client.Request(challenge)
		mustNoErr(t, err)
		if closeThem {
			for _, h := range []interface{ Close() error }{issuer, verifier, redeemer, client, pending} {
				mustNoErr(t, h.Close())
				mustNoErr(t, h.Close()) // idempotent: frees nothing more
			}
		}
	}
}

// Forgotten handles are freed by their finalizers, each exactly once, and closed ones are freed
// by Close only (their finalizer is gone). Run under the race detector and cgocheck=2.
func TestFinalizers(t *testing.T) {
	const n = 20
	before := settleFinalizers() // the garbage of earlier tests, out of the way

	makeHandles(t, n, true)
	closed := freedCounts()
	for k := range closed {
		if closed[k]-before[k] != n {
			t.Fatalf("%d %s handles closed, %d freed", n, freedKinds[k], closed[k]-before[k])
		}
	}

	makeHandles(t, n, false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		runtime.GC()
		now, done := freedCounts(), true
		for k := range now {
			done = done && now[k]-closed[k] >= n
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for k := range now {
				t.Errorf("%s: %d of %d forgotten handles freed", freedKinds[k], now[k]-closed[k], n)
			}
			t.FailNow()
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := settleFinalizers()
	for k := range after {
		if after[k]-closed[k] != n {
			t.Errorf("%s: %d forgotten, %d freed", freedKinds[k], n, after[k]-closed[k])
		}
	}
}

func benchToken(b *testing.B) (*Verifier, []byte, []byte) {
	issuer := testIssuer(b)
	challenge := defaultChallenge(b)
	token := newToken(b, issuer, challenge)
	verifier, err := NewVerifier(issuer.PublicKey())
	mustNoErr(b, err)
	b.Cleanup(func() { verifier.Close() })
	return verifier, token, challenge
}

// BenchmarkVerify: one token verification (bound to its challenge) through the binding, on one
// goroutine.
func BenchmarkVerify(b *testing.B) {
	verifier, token, challenge := benchToken(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := verifier.Verify(token, challenge); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel: one verifier shared by GOMAXPROCS goroutines.
func BenchmarkVerifyParallel(b *testing.B) {
	verifier, token, challenge := benchToken(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := verifier.Verify(token, challenge); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
