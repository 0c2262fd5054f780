package privacypass

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dirServer is an issuer's directory endpoint whose answers the tests change as they run.
type dirServer struct {
	*httptest.Server
	mu           sync.Mutex
	status       int    // 0: 200 (or 304)
	body         []byte // the directory, or whatever a test serves instead
	etag         string // answered, and matched against If-None-Match, when not ""
	cacheControl string
	redirect     string // a Location to answer 302 with, for requests of / only
	requests     int
	notModified  int
	ifNoneMatch  []string // per request
}

func newDirServer(t *testing.T, body []byte, cacheControl string) *dirServer {
	s := &dirServer{body: body, cacheControl: cacheControl}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *dirServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.ifNoneMatch = append(s.ifNoneMatch, r.Header.Get("If-None-Match"))
	if s.redirect != "" && r.URL.Path == "/" {
		http.Redirect(w, r, s.redirect, http.StatusFound)
		return
	}
	if s.cacheControl != "" {
		w.Header().Set("Cache-Control", s.cacheControl)
	}
	if s.status != 0 && s.status != http.StatusOK {
		w.WriteHeader(s.status)
		w.Write(s.body)
		return
	}
	if s.etag != "" {
		w.Header().Set("ETag", s.etag)
		if r.Header.Get("If-None-Match") == s.etag {
			s.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/private-token-issuer-directory")
	w.Write(s.body)
}

func (s *dirServer) set(change func(s *dirServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

func (s *dirServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// dirOf is an issuer directory listing the type 2 keys given.
func dirOf(keys ...[]byte) []byte {
	entries := make([]string, len(keys))
	for i, key := range keys {
		entries[i] = fmt.Sprintf(`{"token-type": 2, "token-key": %q, "not-before": 0}`,
			base64.URLEncoding.EncodeToString(key))
	}
	return []byte(`{"issuer-request-uri": "https://issuer.example/token-request", "token-keys": [` +
		strings.Join(entries, ", ") + `]}`)
}

var (
	otherIssuerOnce sync.Once
	otherIssuer     *Issuer
	otherIssuerErr  error
)

// testIssuer2 is a second shared issuer: the key an issuer rotates to.
func testIssuer2(t testing.TB) *Issuer {
	otherIssuerOnce.Do(func() { otherIssuer, otherIssuerErr = GenerateIssuer() })
	mustNoErr(t, otherIssuerErr)
	return otherIssuer
}

// errorLog records what OnError is given.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// has answers whether some error reported so far matches.
func (l *errorLog) has(match func(error) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if match(err) {
			return true
		}
	}
	return false
}

func (l *errorLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs)
}

// fastOptions refresh every few milliseconds when the server allows it.
func fastOptions(log *errorLog) DirectoryOptions {
	return DirectoryOptions{MinRefresh: 20 * time.Millisecond, MaxRefresh: 5 * time.Second, OnError: log.add}
}

// eventually polls cond until it holds, failing the test after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newDirVerifier(t *testing.T, url string, opts DirectoryOptions) *DirectoryVerifier {
	t.Helper()
	d, err := NewDirectoryVerifier(context.Background(), url, opts)
	mustNoErr(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// The first fetch makes the verifier; it fails the constructor when it fails.
func TestDirectoryVerifierFirstFetch(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	challenge := defaultChallenge(t)
	token, otherToken := newToken(t, issuer, challenge), newToken(t, other, challenge)
	srv := newDirServer(t, directoryJSON(issuer.PublicKey(), 0), "max-age=3600")
	srv.set(func(s *dirServer) { s.etag = `"v1"` })

	d := newDirVerifier(t, srv.URL, DirectoryOptions{})
	mustNoErr(t, d.Verify(token, challenge))
	mustNoErr(t, d.Verify(token, nil))
	authorization, err := EncodeAuthorization(token)
	mustNoErr(t, err)
	mustNoErr(t, d.VerifyAuthorization(authorization, challenge))
	wantErr(t, d.Verify(otherToken, challenge), ErrVerificationFailed)
	wantErr(t, d.VerifyAuthorization("PrivateToken token=!", challenge), ErrInvalidParams)
	st := d.Status()
	if st.URL != srv.URL || st.ETag != `"v1"` || st.MaxAge != time.Hour || st.LastRefresh.IsZero() ||
		st.LastChange.IsZero() || st.Failures != 0 || st.LastError != nil {
		t.Fatalf("status %+v", st)
	}
	// max-age=3600 less the jitter (at most 10%), within the default bounds.
	if until := time.Until(st.NextRefresh); until < 53*time.Minute || until > time.Hour {
		t.Fatalf("next refresh in %v, want 54 to 60 minutes", until)
	}

	bad := []struct {
		name string
		set  func(s *dirServer)
		want func(error) bool
	}{
		{"HTTP 500", func(s *dirServer) { s.status = 500 }, func(err error) bool {
			var e *DirectoryStatusError
			return errors.As(err, &e) && e.StatusCode == 500
		}},
		{"HTTP 404", func(s *dirServer) { s.status = 404 }, func(err error) bool {
			var e *DirectoryStatusError
			return errors.As(err, &e) && e.StatusCode == 404
		}},
		{"not JSON", func(s *dirServer) { s.body = []byte("<html>hello</html>") }, func(err error) bool {
			var e *Error
			return errors.As(err, &e)
		}},
		{"no token-keys", func(s *dirServer) { s.body = []byte(`{"issuer-request-uri": "/x"}`) }, func(err error) bool {
			var e *Error
			return errors.As(err, &e)
		}},
		{"too long", func(s *dirServer) { s.body = make([]byte, MaxDirectoryLen+1) }, func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "longer than")
		}},
	}
	for _, c := range bad {
		srv := newDirServer(t, directoryJSON(issuer.PublicKey(), 0), "")
		srv.set(c.set)
		d, err := NewDirectoryVerifier(context.Background(), srv.URL, DirectoryOptions{})
		if d != nil || !c.want(err) {
			t.Errorf("%s: got %v, %v", c.name, d, err)
		}
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, u := range []string{closed.URL, "ftp://issuer.example/dir", "/relative", "http://%zz"} {
		if d, err := NewDirectoryVerifier(context.Background(), u, DirectoryOptions{}); d != nil || err == nil {
			t.Errorf("%s: got %v, %v", u, d, err)
		}
	}
	for _, opts := range []DirectoryOptions{
		{MinRefresh: time.Minute, MaxRefresh: time.Second},
		{MinRefresh: -time.Second},
		{Jitter: 1.5},
	} {
		if d, err := NewDirectoryVerifier(context.Background(), srv.URL, opts); d != nil || err == nil {
			t.Errorf("%+v: got %v, %v", opts, d, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := NewDirectoryVerifier(ctx, srv.URL, DirectoryOptions{}); d != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, %v", d, err)
	}
}

// The issuer rotates its key: after the refresh max-age allows, the new key's tokens verify and
// the old key's, no longer listed, do not. No refresh comes before max-age less the jitter.
func TestDirectoryVerifierRotation(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	oldToken, newTok := newToken(t, issuer, defaultChallenge(t)), newToken(t, other, defaultChallenge(t))
	srv := newDirServer(t, dirOf(issuer.PublicKey()), "public, max-age=1")
	var log errorLog
	d := newDirVerifier(t, srv.URL, fastOptions(&log))
	mustNoErr(t, d.Verify(oldToken, nil))
	wantErr(t, d.Verify(newTok, nil), ErrVerificationFailed)

	srv.set(func(s *dirServer) { s.body = dirOf(other.PublicKey()) })
	rotated := time.Now()
	time.Sleep(700 * time.Millisecond) // max-age=1 less at most 10%: no refresh yet
	if n := srv.count(); n != 1 {
		t.Fatalf("%d requests within 0.7 s of a max-age=1 directory, want 1", n)
	}
	mustNoErr(t, d.Verify(oldToken, nil))
	eventually(t, "the new key", func() bool { return d.Verify(newTok, nil) == nil })
	if since := time.Since(rotated); since < 850*time.Millisecond {
		t.Fatalf("refreshed after %v, before max-age less the jitter", since)
	}
	wantErr(t, d.Verify(oldToken, nil), ErrVerificationFailed)
	if log.len() != 0 {
		t.Fatalf("errors reported: %v", log.errs)
	}
}

// A 304 answer to the If-None-Match of the last ETag keeps the keys; a new ETag and directory
// replace them.
func TestDirectoryVerifierETag(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	token, otherToken := newToken(t, issuer, defaultChallenge(t)), newToken(t, other, defaultChallenge(t))
	srv := newDirServer(t, dirOf(issuer.PublicKey()), "max-age=0")
	srv.set(func(s *dirServer) { s.etag = `W/"v1"` })
	var log errorLog
	d := newDirVerifier(t, srv.URL, fastOptions(&log))
	first := d.Status()

	eventually(t, "three 304s", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.notModified >= 3
	})
	srv.mu.Lock()
	sent := append([]string(nil), srv.ifNoneMatch...)
	srv.mu.Unlock()
	if sent[0] != "" {
		t.Fatalf("the first request carried If-None-Match %q", sent[0])
	}
	for i, inm := range sent[1:] {
		if inm != `W/"v1"` {
			t.Fatalf("request %d carried If-None-Match %q, want W/\"v1\"", i+1, inm)
		}
	}
	mustNoErr(t, d.Verify(token, nil))
	st := d.Status()
	if st.ETag != `W/"v1"` || !st.LastChange.Equal(first.LastChange) || !st.LastRefresh.After(first.LastRefresh) ||
		st.Failures != 0 {
		t.Fatalf("after 304s: status %+v, first %+v", st, first)
	}

	srv.set(func(s *dirServer) { s.etag, s.body = `"v2"`, dirOf(other.PublicKey()) })
	eventually(t, "the new directory", func() bool { return d.Verify(otherToken, nil) == nil })
	wantErr(t, d.Verify(token, nil), ErrVerificationFailed)
	eventually(t, "If-None-Match v2", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.ifNoneMatch[len(srv.ifNoneMatch)-1] == `"v2"`
	})
	if d.Status().ETag != `"v2"` || log.len() != 0 {
		t.Fatalf("status %+v, errors %v", d.Status(), log.errs)
	}
}

// Failed refreshes keep the last good keys, are reported, and back off; the next good answer
// replaces the keys.
func TestDirectoryVerifierFailures(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	token, otherToken := newToken(t, issuer, defaultChallenge(t)), newToken(t, other, defaultChallenge(t))
	srv := newDirServer(t, dirOf(issuer.PublicKey()), "max-age=1")
	var log errorLog
	opts := fastOptions(&log)
	opts.Jitter = -1
	d := newDirVerifier(t, srv.URL, opts)

	srv.set(func(s *dirServer) { s.status = http.StatusInternalServerError })
	eventually(t, "an HTTP 500 reported", func() bool {
		return log.has(func(err error) bool {
			var e *DirectoryStatusError
			return errors.As(err, &e) && e.StatusCode == 500
		})
	})
	mustNoErr(t, d.Verify(token, nil))

	// Backing off from 20 ms, doubling, up to max-age (1 s): about 6 attempts in 1.5 s, not 75.
	start := srv.count()
	srv.set(func(s *dirServer) { s.status, s.body = 0, []byte(`{"token-keys": "garbage"`) })
	time.Sleep(1500 * time.Millisecond)
	if n := srv.count() - start; n < 1 || n > 10 {
		t.Fatalf("%d attempts in 1.5 s of failures, want a backoff of about 6", n)
	}
	if !log.has(func(err error) bool { var e *Error; return errors.As(err, &e) }) {
		t.Fatalf("garbage not reported: %v", log.errs)
	}
	mustNoErr(t, d.Verify(token, nil))
	wantErr(t, d.Verify(otherToken, nil), ErrVerificationFailed)
	if st := d.Status(); st.Failures < 3 || st.LastError == nil || st.MaxAge != time.Second {
		t.Fatalf("status %+v", st)
	}

	srv.set(func(s *dirServer) { s.body = dirOf(other.PublicKey()) })
	eventually(t, "recovery", func() bool { return d.Verify(otherToken, nil) == nil })
	wantErr(t, d.Verify(token, nil), ErrVerificationFailed)
	if st := d.Status(); st.Failures != 0 || st.LastError != nil {
		t.Fatalf("status after recovery %+v", st)
	}
}

// A redirect to another origin is refused (the keys of two issuers never mix); one to the same
// origin is followed.
func TestDirectoryVerifierRedirect(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	token, otherToken := newToken(t, issuer, defaultChallenge(t)), newToken(t, other, defaultChallenge(t))
	elsewhere := newDirServer(t, dirOf(other.PublicKey()), "max-age=0")
	srv := newDirServer(t, dirOf(issuer.PublicKey()), "max-age=0")
	var log errorLog
	d := newDirVerifier(t, srv.URL+"/", fastOptions(&log))

	srv.set(func(s *dirServer) { s.redirect = elsewhere.URL + "/" })
	eventually(t, "a refused redirect", func() bool {
		return log.has(func(err error) bool { return errors.Is(err, ErrDirectoryRedirect) })
	})
	time.Sleep(100 * time.Millisecond)
	if n := elsewhere.count(); n != 0 {
		t.Fatalf("the other origin got %d requests", n)
	}
	mustNoErr(t, d.Verify(token, nil))
	wantErr(t, d.Verify(otherToken, nil), ErrVerificationFailed)

	// The same host on another scheme is another origin too.
	srv.set(func(s *dirServer) { s.redirect = strings.Replace(srv.URL, "http:", "https:", 1) + "/" })
	before := log.len()
	eventually(t, "a refused scheme change", func() bool { return log.len() > before })
	if !log.has(func(err error) bool { return errors.Is(err, ErrDirectoryRedirect) }) {
		t.Fatalf("errors %v", log.errs)
	}
	mustNoErr(t, d.Verify(token, nil))

	srv.set(func(s *dirServer) { s.redirect, s.body = "/moved", dirOf(other.PublicKey()) })
	eventually(t, "the same-origin redirect", func() bool { return d.Verify(otherToken, nil) == nil })

	d3 := newDirVerifier(t, srv.URL+"/", fastOptions(&log)) // a first fetch through it
	mustNoErr(t, d3.Verify(otherToken, nil))
	wantErr(t, d3.Verify(token, nil), ErrVerificationFailed)
	srv.set(func(s *dirServer) { s.redirect = elsewhere.URL + "/" })
	if d, err := NewDirectoryVerifier(context.Background(), srv.URL+"/", fastOptions(&log)); d != nil || !errors.Is(err, ErrDirectoryRedirect) {
		t.Fatalf("first fetch redirected elsewhere: %v, %v", d, err)
	}
	if n := elsewhere.count(); n != 0 {
		t.Fatalf("the other origin got %d requests", n)
	}

	// A client of the caller's with its own CheckRedirect: the origin check comes first, then it.
	var asked atomic.Int32
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		asked.Add(1)
		return nil
	}}
	if d, err := NewDirectoryVerifier(context.Background(), srv.URL+"/", DirectoryOptions{Client: client}); d != nil || !errors.Is(err, ErrDirectoryRedirect) || asked.Load() != 0 {
		t.Fatalf("caller's client, redirected elsewhere: %v, %v, CheckRedirect asked %d times", d, err, asked.Load())
	}
	srv.set(func(s *dirServer) { s.redirect = "/moved" })
	d2, err := NewDirectoryVerifier(context.Background(), srv.URL+"/", DirectoryOptions{Client: client})
	mustNoErr(t, err)
	defer d2.Close()
	mustNoErr(t, d2.Verify(otherToken, nil))
	if asked.Load() != 1 || client.CheckRedirect == nil {
		t.Fatalf("caller's CheckRedirect asked %d times", asked.Load())
	}
}

// Many goroutines verify while the keys are replaced every few milliseconds: every token of a
// listed key verifies, whichever verifier it meets (the race detector watches the swaps).
func TestDirectoryVerifierConcurrentRefresh(t *testing.T) {
	issuer, other := testIssuer(t), testIssuer2(t)
	tokens := [][]byte{newToken(t, issuer, defaultChallenge(t)), newToken(t, other, defaultChallenge(t))}
	authorization, err := EncodeAuthorization(tokens[0])
	mustNoErr(t, err)
	srv := newDirServer(t, dirOf(issuer.PublicKey(), other.PublicKey()), "no-cache")
	var log errorLog
	opts := fastOptions(&log)
	opts.MinRefresh = 2 * time.Millisecond
	d, err := NewDirectoryVerifier(context.Background(), srv.URL, opts)
	mustNoErr(t, err)
	defer d.Close()

	var verified atomic.Int64
	halt := untilHalted(8, func(g, i int) bool {
		var err error
		if g%4 == 3 {
			err = d.VerifyAuthorization(authorization, nil)
			_ = d.Status()
		} else {
			err = d.Verify(tokens[(g+i)%2], nil)
		}
		if err != nil {
			t.Errorf("goroutine %d, call %d: %v", g, i, err)
			return false
		}
		verified.Add(1)
		return true
	})
	defer halt() // before d.Close, should the test fail half-way
	// Every answer is a 200 (no ETag): every refresh swaps in a new verifier.
	eventually(t, "30 refreshes", func() bool { return srv.count() >= 30 })
	halt()
	if verified.Load() == 0 || log.len() != 0 {
		t.Fatalf("%d verified, errors %v", verified.Load(), log.errs)
	}

	// Close while verifying: every call answers nil or ErrClosed.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := d.Verify(tokens[0], nil)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	mustNoErr(t, d.Close())
	wg.Wait()
}

// A call that took the verifier a refresh then replaced and closed runs again on the new one:
// the window between a refresh's swap and its Close, made to happen every time.
func TestDirectoryVerifierSwapWindow(t *testing.T) {
	issuer := testIssuer(t)
	token := newToken(t, issuer, defaultChallenge(t))
	old, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	replacement, err := NewVerifier(issuer.PublicKey())
	mustNoErr(t, err)
	defer replacement.Close()
	d := &DirectoryVerifier{}
	d.cur.Store(old)
	calls := 0
	err = d.with(func(v *Verifier) error {
		calls++
		if calls == 1 {
			d.cur.Store(replacement) // the refresh's swap, then its Close of the old keys
			old.Close()
		}
		return v.Verify(token, nil)
	})
	if err != nil || calls != 2 {
		t.Fatalf("got %v after %d calls, want nil after 2", err, calls)
	}
	d.cur.Store(nil) // closed
	wantErr(t, d.with(func(v *Verifier) error { return v.Verify(token, nil) }), ErrClosed)
}

// Close stops the refreshes at once, frees the keys and is idempotent; the context's end stops
// the refreshes too but keeps the keys until Close.
func TestDirectoryVerifierClose(t *testing.T) {
	issuer := testIssuer(t)
	token := newToken(t, issuer, defaultChallenge(t))
	srv := newDirServer(t, dirOf(issuer.PublicKey()), "max-age=0")
	var log errorLog
	d, err := NewDirectoryVerifier(context.Background(), srv.URL, fastOptions(&log))
	mustNoErr(t, err)
	eventually(t, "three requests", func() bool { return srv.count() >= 3 })
	mustNoErr(t, d.Close())
	n := srv.count()
	time.Sleep(200 * time.Millisecond)
	if after := srv.count(); after != n {
		t.Fatalf("%d requests after Close", after-n)
	}
	wantErr(t, d.Verify(token, nil), ErrClosed)
	wantErr(t, d.VerifyAuthorization("PrivateToken token=AAAA", nil), ErrClosed)
	mustNoErr(t, d.Close())
	if st := d.Status(); !st.NextRefresh.IsZero() || log.len() != 0 {
		t.Fatalf("status %+v, errors %v", st, log.errs)
	}

	// A fetch in flight is cancelled by Close, and not reported.
	hung := make(chan struct{})
	var hangs atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hangs.Load() {
			select {
			case <-hung:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Write(dirOf(issuer.PublicKey()))
	}))
	defer slow.Close()
	defer close(hung)
	d, err = NewDirectoryVerifier(context.Background(), slow.URL, fastOptions(&log))
	mustNoErr(t, err)
	hangs.Store(true)
	time.Sleep(100 * time.Millisecond)
	closed := make(chan struct{})
	go func() { d.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close waited for the hung fetch")
	}
	if st := d.Status(); log.len() != 0 || st.Failures != 0 || st.LastError != nil {
		t.Fatalf("errors %v, status %+v", log.errs, st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	d, err = NewDirectoryVerifier(ctx, srv.URL, fastOptions(&log))
	mustNoErr(t, err)
	defer d.Close()
	eventually(t, "a refresh", func() bool { return srv.count() >= n+2 })
	cancel()
	eventually(t, "the refresher to stop", func() bool { return d.Status().NextRefresh.IsZero() })
	n = srv.count()
	time.Sleep(200 * time.Millisecond)
	if after := srv.count(); after != n {
		t.Fatalf("%d requests after the context ended", after-n)
	}
	mustNoErr(t, d.Verify(token, nil))
}

func TestDirectoryCacheControl(t *testing.T) {
	d := &DirectoryVerifier{opts: DirectoryOptions{DefaultRefresh: 7 * time.Minute}}
	for _, c := range []struct {
		headers []string // name, value pairs
		want    time.Duration
	}{
		{nil, 7 * time.Minute},
		{[]string{"Cache-Control", "public"}, 7 * time.Minute},
		{[]string{"Cache-Control", "max-age=60"}, time.Minute},
		{[]string{"Cache-Control", `public, Max-Age="90", s-maxage=10`}, 90 * time.Second},
		{[]string{"Cache-Control", "max-age=60", "Cache-Control", "max-age=30"}, 30 * time.Second},
		{[]string{"Cache-Control", "max-age=60", "Age", "15"}, 45 * time.Second},
		{[]string{"Cache-Control", "max-age=60", "Age", "600"}, 0},
		{[]string{"Cache-Control", "max-age=60, no-cache"}, 0},
		{[]string{"Cache-Control", "no-store"}, 0},
		{[]string{"Cache-Control", "max-age=soon"}, 0},
		{[]string{"Cache-Control", "max-age=99999999999999999999999"}, (1 << 31) * time.Second},
		{[]string{"Expires", "Thu, 01 Jan 2099 00:00:00 GMT"}, 7 * time.Minute},
	} {
		h := http.Header{}
		for i := 0; i < len(c.headers); i += 2 {
			h.Add(c.headers[i], c.headers[i+1])
		}
		if got := d.freshness(h); got != c.want {
			t.Errorf("%v: freshness %v, want %v", c.headers, got, c.want)
		}
	}

	min, max := 30*time.Second, 24*time.Hour
	for _, c := range []struct {
		fresh time.Duration
		early float64
		want  time.Duration
	}{
		{time.Hour, 0, time.Hour},
		{time.Hour, 0.1, 54 * time.Minute},
		{0, 0.05, min},
		{10 * time.Second, 0, min},
		{48 * time.Hour, 0, max},
		{(1 << 31) * time.Second, 0.09, max},
	} {
		if got := refreshInterval(c.fresh, c.early, min, max); got != c.want {
			t.Errorf("refreshInterval(%v, %v) = %v, want %v", c.fresh, c.early, got, c.want)
		}
	}
	for _, c := range []struct {
		failures int
		fresh    time.Duration
		want     time.Duration
	}{
		{1, time.Hour, 30 * time.Second},
		{2, time.Hour, time.Minute},
		{4, time.Hour, 4 * time.Minute},
		{8, time.Hour, time.Hour},
		{100, time.Hour, time.Hour},
		{100, 0, min},
		{100, 1000 * time.Hour, max},
	} {
		if got := backoffDelay(c.failures, c.fresh, 0, min, max); got != c.want {
			t.Errorf("backoffDelay(%d, %v) = %v, want %v", c.failures, c.fresh, got, c.want)
		}
	}
	if got := backoffDelay(2, time.Hour, 0.1, min, max); got != 54*time.Second {
		t.Errorf("backoff with jitter: %v", got)
	}
}

const directoryExampleMarker = "<!-- TestReadmeDirectoryVerifierExample -->"

// The README's DirectoryVerifier example compiles: it is built as a program of its own module
// against this package.
func TestReadmeDirectoryVerifierExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	mustNoErr(t, err)
	text := string(readme)
	at := strings.Index(text, directoryExampleMarker+"\n```go\n")
	if at < 0 || strings.Count(text, directoryExampleMarker) != 1 {
		t.Fatalf("README.md has not exactly one %q line followed by a ```go block", directoryExampleMarker)
	}
	block := text[at+len(directoryExampleMarker)+len("\n```go\n"):]
	end := strings.Index(block, "\n```\n")
	if end < 0 {
		t.Fatal("the example block is not closed")
	}
	here, err := os.Getwd()
	mustNoErr(t, err)
	dir := t.TempDir()
	mustNoErr(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(block[:end+1]), 0o644))
	mustNoErr(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module directoryexample\n\ngo 1.19\n\n"+
		"require privacypass.example/privacypass v0.0.0\n\n"+
		"replace privacypass.example/privacypass => "+here+"\n"), 0o644))
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", filepath.Join(dir, "example"), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the README example: %v\n%s", err, out)
	}
}

// redeemerCount is how many redeemers of NewRedeemer the verifier still keeps current.
func redeemerCount(d *DirectoryVerifier) int {
	d.keysMu.Lock()
	defer d.keysMu.Unlock()
	return len(d.redeemers)
}

// refreshed waits until a directory fetched after now has replaced the keys: LastChange after
// the end of a request that began after now.
func refreshed(t *testing.T, srv *dirServer, d *DirectoryVerifier) {
	t.Helper()
	n := srv.count()
	eventually(t, "a refresh", func() bool { return srv.count() >= n+2 })
	after := time.Now()
	eventually(t, "a refresh after it", func() bool { return d.Status().LastChange.After(after) })
}

// A redeemer of NewRedeemer follows the directory: a key added redeems, a key removed no longer
// verifies, and a token spent before a refresh stays spent after it. A closed redeemer is let
// go; Close of the DirectoryVerifier leaves its redeemers open, with the last keys.
func TestDirectoryVerifierRedeemer(t *testing.T) {
	a, b := testIssuer(t), testIssuer2(t)
	challenge := defaultChallenge(t)
	srv := newDirServer(t, dirOf(a.PublicKey()), "max-age=0")
	var log errorLog
	d := newDirVerifier(t, srv.URL, fastOptions(&log))

	r, err := d.NewRedeemer("memory:")
	mustNoErr(t, err)
	defer r.Close()
	_, err = d.NewRedeemer("nosuchstore:")
	wantErr(t, err, ErrInvalidStoreURL)
	spentA, tokenB := newToken(t, a, challenge), newToken(t, b, challenge)
	mustNoErr(t, r.Redeem(spentA, challenge))
	wantErr(t, r.Redeem(spentA, challenge), ErrAlreadySpent)
	wantErr(t, r.Redeem(tokenB, challenge), ErrVerificationFailed)

	// The directory adds b: once the verifier has it, so has the redeemer (it is given the keys
	// first), and a's spent token, still verifying, is still spent.
	srv.set(func(s *dirServer) { s.body = dirOf(a.PublicKey(), b.PublicKey()) })
	eventually(t, "key b", func() bool { return d.Verify(tokenB, nil) == nil })
	mustNoErr(t, r.Redeem(tokenB, challenge))
	wantErr(t, r.Redeem(spentA, challenge), ErrAlreadySpent)
	wantErr(t, r.Redeem(tokenB, challenge), ErrAlreadySpent)
	mustNoErr(t, r.Redeem(newToken(t, a, challenge), challenge))

	// The directory lists b only: a's tokens no longer verify, spent or not.
	freshA := newToken(t, a, challenge)
	srv.set(func(s *dirServer) { s.body = dirOf(b.PublicKey()) })
	eventually(t, "key a gone", func() bool { return errors.Is(d.Verify(freshA, nil), ErrVerificationFailed) })
	wantErr(t, r.Redeem(freshA, challenge), ErrVerificationFailed)
	wantErr(t, r.Redeem(spentA, challenge), ErrVerificationFailed)
	wantErr(t, r.Redeem(tokenB, challenge), ErrAlreadySpent)
	mustNoErr(t, r.Redeem(newToken(t, b, challenge), challenge))

	// One made now has the current keys; a closed one is dropped at the next refresh.
	r2, err := d.NewRedeemer("rocksdb:" + t.TempDir())
	mustNoErr(t, err)
	defer r2.Close()
	mustNoErr(t, r2.Redeem(tokenB, challenge)) // its own store: not spent there
	wantErr(t, r2.Redeem(freshA, challenge), ErrVerificationFailed)
	r3, err := d.NewRedeemer("memory:")
	mustNoErr(t, err)
	if n := redeemerCount(d); n != 3 {
		t.Fatalf("%d redeemers kept current, want 3", n)
	}
	mustNoErr(t, r3.Close())
	refreshed(t, srv, d)
	if n := redeemerCount(d); n != 2 {
		t.Fatalf("%d redeemers kept current after one was closed and a refresh, want 2", n)
	}
	wantErr(t, r3.Redeem(tokenB, challenge), ErrClosed)

	// Back to a: after Close of the DirectoryVerifier the redeemers keep a, without updates.
	srv.set(func(s *dirServer) { s.body = dirOf(a.PublicKey()) })
	eventually(t, "key a back", func() bool { return d.Verify(freshA, nil) == nil })
	mustNoErr(t, d.Close())
	_, err = d.NewRedeemer("memory:")
	wantErr(t, err, ErrClosed)
	if n := redeemerCount(d); n != 0 {
		t.Fatalf("%d redeemers kept after Close", n)
	}
	srv.set(func(s *dirServer) { s.body = dirOf(b.PublicKey()) })
	mustNoErr(t, r.Redeem(freshA, challenge))
	mustNoErr(t, r2.Redeem(newToken(t, a, challenge), challenge))
	wantErr(t, r.Redeem(newToken(t, b, challenge), challenge), ErrVerificationFailed)
	if log.len() != 0 {
		t.Fatalf("errors reported: %v", log.errs)
	}
}

// A redeemer whose keys a refresh cannot replace (a VOPRF issuer's, registered by hand: one of
// NewRedeemer never fails so) is reported to OnError, keeps its own keys, and does not stop the
// redeemers after it.
func TestDirectoryVerifierRedeemerSetKeysFailure(t *testing.T) {
	a, b := testIssuer(t), testIssuer2(t)
	challenge := defaultChallenge(t)
	srv := newDirServer(t, dirOf(a.PublicKey()), "max-age=0")
	var log errorLog
	d := newDirVerifier(t, srv.URL, fastOptions(&log))

	voprf, err := GenerateVoprfIssuer(TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	defer voprf.Close()
	private, err := NewRedeemerFromIssuer(voprf, "memory:")
	mustNoErr(t, err)
	defer private.Close()
	d.keysMu.Lock()
	d.redeemers = append(d.redeemers, private)
	d.keysMu.Unlock()
	r, err := d.NewRedeemer("memory:")
	mustNoErr(t, err)
	defer r.Close()

	srv.set(func(s *dirServer) { s.body = dirOf(b.PublicKey()) })
	tokenB := newToken(t, b, challenge)
	eventually(t, "key b", func() bool { return d.Verify(tokenB, nil) == nil })
	mustNoErr(t, r.Redeem(tokenB, challenge))
	eventually(t, "the failure reported", func() bool {
		return log.has(func(err error) bool { return errors.Is(err, ErrInvalidKey) })
	})
	if !log.has(func(err error) bool {
		var e *Error
		return errors.As(err, &e) && e.Op() == "pp_redeemer_set_keys" && strings.Contains(err.Error(), srv.URL)
	}) {
		t.Fatalf("errors reported: %v", log.errs)
	}
	vc := voprfChallenge(t, TokenTypeVoprfRistretto255)
	mustNoErr(t, private.Redeem(newVoprfToken(t, voprf, vc), vc))
	if st := d.Status(); st.Failures != 0 || st.LastError != nil {
		t.Fatalf("a redeemer's failure counted as a failed fetch: %+v", st)
	}

	// Closed, it is dropped: no more reports.
	mustNoErr(t, private.Close())
	refreshed(t, srv, d)
	before := log.len()
	refreshed(t, srv, d)
	if n, after := redeemerCount(d), log.len(); n != 1 || after != before {
		t.Fatalf("%d redeemers kept, %d reports after the failing one was closed", n, after-before)
	}
}

// Goroutines redeem through one redeemer of NewRedeemer, and make, use and close redeemers of
// their own, while the keys are replaced every few milliseconds: every fresh token redeems
// exactly once, every spent one stays spent (the race detector watches the replacements).
func TestDirectoryVerifierRedeemerConcurrentRefresh(t *testing.T) {
	a, b := testIssuer(t), testIssuer2(t)
	challenge := defaultChallenge(t)
	const perKey = 40
	var tokens [][]byte
	for i := 0; i < perKey; i++ {
		tokens = append(tokens, newToken(t, a, challenge), newToken(t, b, challenge))
	}
	srv := newDirServer(t, dirOf(a.PublicKey(), b.PublicKey()), "no-cache")
	var log errorLog
	opts := fastOptions(&log)
	opts.MinRefresh = 2 * time.Millisecond
	d := newDirVerifier(t, srv.URL, opts)
	shared, err := d.NewRedeemer("memory:")
	mustNoErr(t, err)
	defer shared.Close()

	var next, redeemed, refused, made atomic.Int64
	spent := make([]atomic.Bool, len(tokens)) // redeemed by the shared redeemer
	halt := untilHalted(8, func(g, i int) bool {
		if g%4 == 3 { // a redeemer of its own, for one token
			r, err := d.NewRedeemer("memory:")
			if err != nil {
				t.Errorf("goroutine %d: NewRedeemer: %v", g, err)
				return false
			}
			token := tokens[(g+i)%len(tokens)]
			err, again := r.Redeem(token, nil), r.Redeem(token, nil)
			r.Close()
			if err != nil || !errors.Is(again, ErrAlreadySpent) {
				t.Errorf("goroutine %d, own redeemer %d: %v, then %v", g, i, err, again)
				return false
			}
			made.Add(1)
		} else if k := int(next.Add(1)) - 1; k < len(tokens) {
			if err := shared.Redeem(tokens[k], nil); err != nil {
				t.Errorf("goroutine %d: fresh token %d: %v", g, k, err)
				return false
			}
			spent[k].Store(true)
			redeemed.Add(1)
		} else if j := k % len(tokens); spent[j].Load() { // not one still in flight
			if err := shared.Redeem(tokens[j], nil); !errors.Is(err, ErrAlreadySpent) {
				t.Errorf("goroutine %d: spent token %d: %v", g, j, err)
				return false
			}
			refused.Add(1)
		}
		return true
	})
	defer halt()
	start := srv.count()
	eventually(t, "30 refreshes", func() bool { return srv.count() >= start+30 })
	eventually(t, "every fresh token redeemed", func() bool { return redeemed.Load()+refused.Load() > int64(len(tokens)) })
	halt()
	if redeemed.Load() != int64(len(tokens)) || made.Load() == 0 || log.len() != 0 {
		t.Fatalf("%d of %d fresh tokens redeemed, %d own redeemers, errors %v",
			redeemed.Load(), len(tokens), made.Load(), log.errs)
	}
	for _, token := range tokens {
		wantErr(t, shared.Redeem(token, nil), ErrAlreadySpent)
	}
	// The closed ones are let go: the next refresh leaves the shared one only.
	eventually(t, "the closed redeemers dropped", func() bool { return redeemerCount(d) == 1 })
}

// untilHalted calls body(g, i), i = 0, 1, …, in each of n goroutines g until body answers false
// or halt is called; halt (idempotent) waits for them. Between calls each goroutine yields, so
// that on 2 cores the refresher and the test server get their turn.
func untilHalted(n int, body func(g, i int) bool) (halt func()) {
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !body(g, i) {
					return
				}
				runtime.Gosched()
			}
		}(g)
	}
	return func() { once.Do(func() { close(stop) }); wg.Wait() }
}
