package privacypass

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ---------------------------------------------------------------------------------------------
// DirectoryVerifier

// Defaults of [DirectoryOptions].
const (
	DefaultDirectoryTimeout = 10 * time.Second // the default client's timeout, per fetch
	DefaultMinRefresh       = 30 * time.Second
	DefaultMaxRefresh       = 24 * time.Hour
	DefaultRefresh          = time.Hour // a directory answered without max-age
	DefaultJitter           = 0.1
	// MaxDirectoryLen bounds a directory body: a longer one is an invalid directory.
	MaxDirectoryLen = 1 << 20
)

// ErrDirectoryRedirect is the cause of a fetch refused because the issuer's URL redirected to
// another origin (scheme, host or port): a DirectoryVerifier only ever holds the keys of the
// issuer it was made for. Test for it with errors.Is.
var ErrDirectoryRedirect = errors.New("privacypass: issuer directory redirected to another origin")

// DirectoryStatusError is the error of a directory fetch answered with an HTTP status other than
// 2xx or (to a conditional request) 304.
type DirectoryStatusError struct {
	URL        string
	StatusCode int
}

func (e *DirectoryStatusError) Error() string {
	return fmt.Sprintf("privacypass: issuer directory %s: HTTP status %d", e.URL, e.StatusCode)
}

// DirectoryOptions configures [NewDirectoryVerifier]. The zero value is the defaults.
type DirectoryOptions struct {
	// Client fetches the directory; nil is a client with a DefaultDirectoryTimeout timeout. The
	// verifier uses a copy of it whose CheckRedirect first refuses any redirect to another
	// origin than the directory URL's (ErrDirectoryRedirect), then applies Client's own
	// CheckRedirect (or the default limit of 10 redirects).
	Client *http.Client
	// MinRefresh and MaxRefresh bound the time between two fetches (defaults DefaultMinRefresh
	// and DefaultMaxRefresh); MinRefresh is also the first retry delay after a failed fetch.
	MinRefresh, MaxRefresh time.Duration
	// DefaultRefresh is the freshness of a directory answered without max-age (default
	// DefaultRefresh), before the jitter and the bounds.
	DefaultRefresh time.Duration
	// Jitter is the fraction of the freshness lifetime by which a refresh happens early, drawn
	// uniformly in [0, Jitter) per fetch so that many verifiers of one issuer do not refresh in
	// step (default DefaultJitter; a negative value disables it; at most 1).
	Jitter float64
	// OnError, if not nil, is called with the error of every failed background refresh (the
	// first fetch's error is NewDirectoryVerifier's instead), and with the error of each
	// redeemer of [DirectoryVerifier.NewRedeemer] that a refresh could not give the new keys
	// (that redeemer keeps its old ones until a later refresh succeeds for it; the refresh, the
	// verifier's keys and the other redeemers are not affected). It runs on the refresher's
	// goroutine, which waits for it: it must not block for long, and must not call Close.
	OnError func(error)
}

// DirectoryStatus is a snapshot of a DirectoryVerifier's refreshes, for monitoring.
type DirectoryStatus struct {
	URL         string
	LastRefresh time.Time     // the last successful fetch (a new directory or a 304)
	LastChange  time.Time     // when the keys were last replaced
	ETag        string        // the current directory's ETag, "" if it had none
	MaxAge      time.Duration // the freshness the issuer gave the current directory
	NextRefresh time.Time     // when the next fetch is due (zero once stopped)
	Failures    int           // failed fetches since the last successful one
	LastError   error         // the error of the last fetch, nil if it succeeded
}

// DirectoryVerifier is a Verifier for the type 2 keys of one issuer, kept current from the
// issuer's directory URL (RFC 9578, /.well-known/private-token-issuer-directory) by a background
// goroutine. Each successful fetch replaces the whole key set with the directory's (keys the
// issuer no longer lists stop verifying); a failed one keeps the last good keys. Safe for
// concurrent use; Verify takes no lock beyond the Verifier's own.
//
// Refreshes follow the response's caching headers: Cache-Control max-age (less the Age header)
// is the directory's freshness, and the next fetch comes before it ends, at max-age × (1 −
// Jitter × a uniform draw in [0, 1)), bounded by MinRefresh and MaxRefresh; no-store or no-cache
// refresh at MinRefresh; without max-age the freshness is DefaultRefresh. s-maxage (a shared
// cache's), Expires and the heuristic freshness of RFC 9111 are ignored. The last ETag is sent as
// If-None-Match, and a 304 keeps the keys and restarts the freshness from its own headers. After
// a failed fetch (network error, a status other than 2xx or 304, a body that is not a valid
// directory, a refused redirect) the retries back off from MinRefresh, doubling, up to the last
// good directory's refresh interval.
//
// [DirectoryVerifier.NewRedeemer] makes a [Redeemer] that the refreshes keep current too.
type DirectoryVerifier struct {
	url    string
	opts   DirectoryOptions
	client *http.Client
	cur    atomic.Pointer[Verifier]
	rand   *rand.Rand // the refresher goroutine's only

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	status DirectoryStatus

	// keysMu serialises replacing the keys (cur and every redeemer's) with NewRedeemer's making
	// and registering of a redeemer, and with Close: a redeemer is made with the current keys
	// and registered before any later replacement, which then gives it the new ones.
	keysMu    sync.Mutex
	redeemers []*Redeemer // of NewRedeemer, still open when last looked at
}

// NewDirectoryVerifier fetches the issuer directory at directoryURL (an http or https URL) and
// answers a verifier for its keys, then refreshes them in the background until Close or until
// ctx is done (after which the last keys stay in use, without refreshes, until Close). It fails
// if the URL or opts are invalid, or if the first fetch fails or answers no valid directory.
// Close the verifier to stop its goroutine and free its keys.
func NewDirectoryVerifier(ctx context.Context, directoryURL string, opts DirectoryOptions) (*DirectoryVerifier, error) {
	base, err := url.Parse(directoryURL)
	if err != nil {
		return nil, fmt.Errorf("privacypass: issuer directory URL: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("privacypass: issuer directory URL %q: not an absolute http or https URL", directoryURL)
	}
	if opts.MinRefresh == 0 {
		opts.MinRefresh = DefaultMinRefresh
	}
	if opts.MaxRefresh == 0 {
		opts.MaxRefresh = DefaultMaxRefresh
	}
	if opts.DefaultRefresh == 0 {
		opts.DefaultRefresh = DefaultRefresh
	}
	switch {
	case opts.Jitter == 0:
		opts.Jitter = DefaultJitter
	case opts.Jitter < 0:
		opts.Jitter = 0
	}
	if opts.MinRefresh < 0 || opts.MaxRefresh < opts.MinRefresh || opts.DefaultRefresh < 0 || opts.Jitter > 1 {
		return nil, errors.New("privacypass: DirectoryOptions: want 0 < MinRefresh <= MaxRefresh, DefaultRefresh >= 0, Jitter <= 1")
	}

	client := &http.Client{Timeout: DefaultDirectoryTimeout}
	if opts.Client != nil {
		copied := *opts.Client
		client = &copied
	}
	next := client.CheckRedirect
	origin := originOf(base)
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if originOf(req.URL) != origin {
			return fmt.Errorf("%w: %s", ErrDirectoryRedirect, req.URL.Redacted())
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}

	d := &DirectoryVerifier{
		url:    base.String(),
		opts:   opts,
		client: client,
		rand:   rand.New(rand.NewSource(time.Now().UnixNano())),
		done:   make(chan struct{}),
	}
	d.status.URL = d.url
	fresh, err := d.fetch(ctx)
	if err != nil {
		return nil, err
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	go d.run(fresh, d.schedule(d.interval(fresh)))
	return d, nil
}

// originOf is a URL's scheme, host and port, the port made explicit.
func originOf(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// Verify is [Verifier.Verify] with the current keys. After Close it answers ErrClosed.
func (d *DirectoryVerifier) Verify(token, challenge []byte) error {
	return d.with(func(v *Verifier) error { return v.Verify(token, challenge) })
}

// VerifyAuthorization is [Verifier.VerifyAuthorization] with the current keys. After Close it
// answers ErrClosed.
func (d *DirectoryVerifier) VerifyAuthorization(authorization string, challenge []byte) error {
	return d.with(func(v *Verifier) error { return v.VerifyAuthorization(authorization, challenge) })
}

// with runs call on the current verifier. A refresh closes the verifier it replaces (Close waits
// for the calls in flight); a call that took it just before and reached it just after the
// replacement answers ErrClosed, and runs again on the new one.
func (d *DirectoryVerifier) with(call func(*Verifier) error) error {
	for {
		v := d.cur.Load()
		if v == nil {
			return ErrClosed
		}
		err := call(v)
		if !errors.Is(err, ErrClosed) || d.cur.Load() == v {
			return err
		}
	}
}

// NewRedeemer makes a redeemer with the current keys that records spends in the store storeURL
// names (the URLs and errors of the package's [NewRedeemer]) and that the refreshes keep
// current: each refresh that replaces the keys (a new directory; not a 304, nor a failed fetch)
// gives the redeemer the new ones too, before Verify sees them ([Redeemer.SetKeys]: all at
// once, the spends kept, so a token spent before stays spent whichever keys verify it). No
// refresh falls between the redeemer's making and its registration: a refresh waits for
// NewRedeemer (which takes as long as opening the store does), and every later one updates
// the redeemer. A redeemer whose keys a refresh could not replace is reported to OnError and
// keeps its keys; the others are updated all the same.
//
// The caller owns the redeemer: Close it when done. A closed redeemer is no longer updated, and
// the DirectoryVerifier lets go of it at the next refresh or NewRedeemer; while it is open the
// DirectoryVerifier refers to it, so its finalizer does not run. Close of the DirectoryVerifier
// stops the updates but does not close the redeemers: they keep verifying with the last keys
// until their owner closes them. After the end of the context given to NewDirectoryVerifier the
// redeemers keep the last keys too, and NewRedeemer still makes one with them. After Close it
// answers ErrClosed.
func (d *DirectoryVerifier) NewRedeemer(storeURL string) (*Redeemer, error) {
	d.keysMu.Lock()
	defer d.keysMu.Unlock()
	v := d.cur.Load() // replaced and closed only under keysMu
	if v == nil {
		return nil, ErrClosed
	}
	r, err := NewRedeemer(v, storeURL)
	if err != nil {
		return nil, err
	}
	d.keepRedeemers(func(other *Redeemer) bool { return !other.closed() })
	d.redeemers = append(d.redeemers, r)
	return r, nil
}

// keepRedeemers keeps the redeemers that keep answers true for, in order; keysMu is held.
func (d *DirectoryVerifier) keepRedeemers(keep func(*Redeemer) bool) {
	live := d.redeemers[:0]
	for _, r := range d.redeemers {
		if keep(r) {
			live = append(live, r)
		}
	}
	for i := len(live); i < len(d.redeemers); i++ {
		d.redeemers[i] = nil // let the dropped ones be collected
	}
	d.redeemers = live
}

// replace makes v the current keys of every redeemer of NewRedeemer, then of the verifier (so
// that once Verify accepts a new key's token every redeemer does too), and closes the keys it
// replaced. It answers the errors of the redeemers that kept their keys; a redeemer its owner
// closed is dropped.
func (d *DirectoryVerifier) replace(v *Verifier) []error {
	var failed []error
	d.keysMu.Lock()
	d.keepRedeemers(func(r *Redeemer) bool {
		err := r.SetKeys(v)
		if errors.Is(err, ErrClosed) {
			return false // closed by its owner (v is open: it is ours)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("privacypass: issuer directory %s: a redeemer kept its old keys: %w", d.url, err))
		}
		return true
	})
	old := d.cur.Swap(v)
	d.keysMu.Unlock()
	if old != nil {
		old.Close()
	}
	return failed
}

// Status answers a snapshot of the refreshes so far.
func (d *DirectoryVerifier) Status() DirectoryStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Close stops the refreshes (cancelling a fetch in flight and waiting for the goroutine to end:
// no request is made after Close returns) and frees the keys once the Verify calls in flight
// are done; later calls answer ErrClosed. The redeemers of NewRedeemer stay open, with the last
// keys, no longer updated: their owner closes them. Idempotent.
func (d *DirectoryVerifier) Close() error {
	d.once.Do(func() {
		d.cancel()
		<-d.done
		d.keysMu.Lock()
		v := d.cur.Swap(nil)
		d.keepRedeemers(func(*Redeemer) bool { return false })
		d.keysMu.Unlock()
		if v != nil {
			v.Close()
		}
	})
	return nil
}

// run refreshes the directory until d.ctx is done, the first time after delay; fresh is the
// current directory's freshness.
func (d *DirectoryVerifier) run(fresh, delay time.Duration) {
	defer close(d.done)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-d.ctx.Done():
			d.mu.Lock()
			d.status.NextRefresh = time.Time{}
			d.mu.Unlock()
			return
		case <-timer.C:
		}
		f, err := d.fetch(d.ctx)
		if err != nil {
			if d.ctx.Err() != nil {
				continue // stopping: the cancelled fetch is no failure to report
			}
			failures++
			timer.Reset(d.schedule(d.backoff(failures, fresh)))
			if d.opts.OnError != nil {
				d.opts.OnError(err)
			}
			continue
		}
		failures = 0
		fresh = f
		timer.Reset(d.schedule(d.interval(fresh)))
	}
}

// schedule records when the next fetch is due and answers delay.
func (d *DirectoryVerifier) schedule(delay time.Duration) time.Duration {
	d.mu.Lock()
	d.status.NextRefresh = time.Now().Add(delay)
	d.mu.Unlock()
	return delay
}

// interval is the delay until the refresh of a directory fresh for fresh: early by up to Jitter
// of it, within [MinRefresh, MaxRefresh].
func (d *DirectoryVerifier) interval(fresh time.Duration) time.Duration {
	return refreshInterval(fresh, d.opts.Jitter*d.rand.Float64(), d.opts.MinRefresh, d.opts.MaxRefresh)
}

// backoff is the delay before retry number failures (from 1): MinRefresh doubled failures-1
// times, at most the refresh interval of the last good directory (fresh for fresh), less the
// jitter, at least MinRefresh.
func (d *DirectoryVerifier) backoff(failures int, fresh time.Duration) time.Duration {
	return backoffDelay(failures, fresh, d.opts.Jitter*d.rand.Float64(), d.opts.MinRefresh, d.opts.MaxRefresh)
}

func refreshInterval(fresh time.Duration, early float64, min, max time.Duration) time.Duration {
	return clampDuration(time.Duration(float64(fresh)*(1-early)), min, max)
}

func backoffDelay(failures int, fresh time.Duration, early float64, min, max time.Duration) time.Duration {
	limit := clampDuration(fresh, min, max)
	delay := min
	for i := 1; i < failures && delay < limit; i++ {
		delay *= 2
	}
	if delay > limit {
		delay = limit
	}
	return clampDuration(time.Duration(float64(delay)*(1-early)), min, max)
}

func clampDuration(d, min, max time.Duration) time.Duration {
	if d < min {
		return min
	}
	if d > max {
		return max
	}
	return d
}

// fetch gets the directory once (conditionally, with the last ETag) and, when it answers a new
// valid one, replaces the keys. It answers the directory's freshness.
func (d *DirectoryVerifier) fetch(ctx context.Context) (time.Duration, error) {
	d.mu.Lock()
	etag := d.status.ETag
	d.mu.Unlock()
	fresh, err := d.get(ctx, etag)
	if err != nil && ctx.Err() != nil {
		return 0, err // cancelled: stopping, not a failure of the issuer's
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.LastError = err
	if err != nil {
		d.status.Failures++
		return 0, err
	}
	d.status.Failures = 0
	d.status.LastRefresh = time.Now()
	d.status.MaxAge = fresh
	return fresh, nil
}

func (d *DirectoryVerifier) get(ctx context.Context, etag string) (time.Duration, error) {
	fail := func(err error) (time.Duration, error) {
		return 0, fmt.Errorf("privacypass: issuer directory %s: %w", d.url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/private-token-issuer-directory, application/json;q=0.9")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err // a *url.Error, which names the URL
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDirectoryLen))
		if e := resp.Header.Get("ETag"); e != "" {
			d.mu.Lock()
			d.status.ETag = e
			d.mu.Unlock()
		}
		return d.freshness(resp.Header), nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDirectoryLen))
		return 0, &DirectoryStatusError{URL: d.url, StatusCode: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDirectoryLen+1))
	if err != nil {
		return fail(err)
	}
	if len(body) > MaxDirectoryLen {
		return fail(fmt.Errorf("body longer than %d bytes", MaxDirectoryLen))
	}
	v, err := NewVerifierFromDirectory(body)
	if err != nil {
		return fail(err)
	}
	failed := d.replace(v)
	d.mu.Lock()
	d.status.ETag = resp.Header.Get("ETag")
	d.status.LastChange = time.Now()
	d.mu.Unlock()
	if d.opts.OnError != nil {
		for _, err := range failed {
			d.opts.OnError(err)
		}
	}
	return d.freshness(resp.Header), nil
}

// freshness is the remaining freshness lifetime a response's headers give: 0 for no-store or
// no-cache, max-age less Age, DefaultRefresh without max-age.
func (d *DirectoryVerifier) freshness(h http.Header) time.Duration {
	maxAge, ok := cacheMaxAge(h)
	if !ok {
		return d.opts.DefaultRefresh
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		if age >= maxAge {
			return 0
		}
		maxAge -= age
	}
	return time.Duration(maxAge) * time.Second
}

// cacheMaxAge reads Cache-Control: no-store or no-cache answer 0; otherwise the smallest
// max-age, in seconds, capped at 2^31; ok is false without any of them.
func cacheMaxAge(h http.Header) (seconds int64, ok bool) {
	const limit = 1 << 31
	seconds = -1
	for _, field := range h.Values("Cache-Control") {
		for _, directive := range strings.Split(field, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
				if err != nil {
					if errors.Is(err, strconv.ErrRange) {
						n = limit
					} else {
						return 0, true // an invalid max-age: stale (RFC 9111, 4.2.1)
					}
				}
				if n > limit {
					n = limit
				}
				if seconds < 0 || int64(n) < seconds {
					seconds = int64(n)
				}
			}
		}
	}
	return seconds, seconds >= 0
}
