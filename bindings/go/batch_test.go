package privacypass

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The batched vectors (privacypass, Rust): JSON objects whose leaves are hex strings or null,
// with lists of them (nonces, blinds, tokens; a generic vector's issuance entries).
var amortizedVectorFiles = []struct {
	path string
	typ  voprfType
}{
	{"../../tests/vectors/batched-amortized_p384_rs.json", voprfP384},
	{"../../tests/vectors/batched-amortized_ristretto255_rs.json", voprfRistretto255},
}

const genericVectorsPath = "../../tests/vectors/batched-generic_rs.json"

// loadJSON reads a JSON file of batched vectors.
func loadJSON(t testing.TB, path string) []map[string]interface{} {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]interface{}
	if err := json.Unmarshal(text, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

// hexField decodes the hex string field name of o; a null or absent field is nil.
func hexField(t testing.TB, o map[string]interface{}, name string) []byte {
	t.Helper()
	v, ok := o[name]
	if !ok || v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("field %s is not a string", name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("field %s: %v", name, err)
	}
	return b
}

// hexList decodes the list of hex strings field name of o.
func hexList(t testing.TB, o map[string]interface{}, name string) [][]byte {
	t.Helper()
	items, ok := o[name].([]interface{})
	if !ok {
		t.Fatalf("field %s is not a list", name)
	}
	out := make([][]byte, len(items))
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			t.Fatalf("%s[%d] is not a string", name, i)
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("%s[%d]: %v", name, i, err)
		}
		out[i] = b
	}
	return out
}

func sameTokens(t testing.TB, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tokens, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: token %d is %x, want %x", what, i, got[i], want[i])
		}
	}
}

// Every amortized vector (types 1 and 5), byte for byte: the client given the vector's nonces and
// blinds reproduces token_request and finalizes token_response into the vector's tokens; the
// issuer from the vector's scalar answers a response (a fresh proof) that finalizes into the
// same tokens and refuses the batch over a smaller limit (ErrTooLarge); each token redeems once.
func TestBatchAmortizedVectors(t *testing.T) {
	for _, file := range amortizedVectorFiles {
		file := file
		vectors := loadJSON(t, file.path)
		if len(vectors) != 5 {
			t.Fatalf("%s: %d vectors, want 5", file.path, len(vectors))
		}
		for i, v := range vectors {
			v := v
			t.Run(fmt.Sprintf("%s/%d", filepath.Base(file.path), i), func(t *testing.T) {
				typ := file.typ
				sk, pk := hexField(t, v, "sk_s"), hexField(t, v, "pk_s")
				challenge := hexField(t, v, "token_challenge")
				request, response := hexField(t, v, "token_request"), hexField(t, v, "token_response")
				nonces, blinds, tokens := hexList(t, v, "nonces"), hexList(t, v, "blinds"), hexList(t, v, "tokens")
				n := len(tokens)
				if n == 0 || len(nonces) != n || len(blinds) != n {
					t.Fatal("vector with mismatched lists")
				}

				issuer, err := NewIssuerFromScalar(typ.tokenType, sk)
				mustNoErr(t, err)
				defer issuer.Close()
				if !bytes.Equal(issuer.PublicKey(), pk) {
					t.Fatalf("public key %x, want %x", issuer.PublicKey(), pk)
				}
				client, err := NewVoprfClient(typ.tokenType, pk)
				mustNoErr(t, err)
				defer client.Close()
				batch, err := client.RequestAmortizedWithRandomness(challenge, bytes.Join(nonces, nil), bytes.Join(blinds, nil))
				mustNoErr(t, err)
				defer batch.Close()
				if batch.Count() != n {
					t.Errorf("Count %d, want %d", batch.Count(), n)
				}
				if !bytes.Equal(batch.Request(), request) {
					t.Fatalf("request %x, want %x", batch.Request(), request)
				}
				got, err := batch.Finalize(response)
				mustNoErr(t, err)
				sameTokens(t, "vector's response", got, tokens)
				for _, token := range got {
					if len(token) != typ.tokenLen {
						t.Errorf("token of %d bytes, want %d", len(token), typ.tokenLen)
					}
				}

				ours, err := issuer.IssueAmortized(request, 100)
				mustNoErr(t, err)
				if len(ours) != len(response) {
					t.Errorf("our response of %d bytes, want %d", len(ours), len(response))
				}
				got, err = batch.Finalize(ours)
				mustNoErr(t, err)
				sameTokens(t, "our response", got, tokens)
				ours, err = issuer.IssueAmortized(request, n)
				mustNoErr(t, err)
				_, err = issuer.IssueAmortized(request, n-1)
				wantErr(t, err, ErrTooLarge)

				redeemer, err := NewRedeemerFromIssuer(issuer, "memory:")
				mustNoErr(t, err)
				defer redeemer.Close()
				for _, token := range tokens {
					mustNoErr(t, redeemer.Redeem(token, challenge))
					wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
				}
			})
		}
	}
}

// genericIssuer is one key of a generic vector, with its redeemer.
type genericIssuer struct {
	issuer   *Issuer
	redeemer *Redeemer
	pk       []byte
}

func (g *genericIssuer) close() {
	g.redeemer.Close()
	g.issuer.Close()
}

// newGenericIssuer makes the issuer of a vector entry's key (type 2: sk_s is the PEM; types 1
// and 5: the scalar) and its redeemer (type 2: from the public key alone).
func newGenericIssuer(t testing.TB, tokenType uint16, sk, pk []byte) *genericIssuer {
	t.Helper()
	var issuer *Issuer
	var err error
	if tokenType == TokenTypeBlindRSA {
		issuer, err = NewIssuerFromPEM(sk)
	} else {
		issuer, err = NewIssuerFromScalar(tokenType, sk)
	}
	mustNoErr(t, err)
	if !bytes.Equal(issuer.PublicKey(), pk) {
		t.Fatalf("type %d: public key %x, want %x", tokenType, issuer.PublicKey(), pk)
	}
	var redeemer *Redeemer
	if tokenType == TokenTypeBlindRSA {
		verifier, err := NewVerifier(pk)
		mustNoErr(t, err)
		redeemer, err = NewRedeemer(verifier, "memory:")
		verifier.Close()
	} else {
		redeemer, err = NewRedeemerFromIssuer(issuer, "memory:")
	}
	mustNoErr(t, err)
	return &genericIssuer{issuer: issuer, redeemer: redeemer, pk: pk}
}

// Every generic vector (types 1, 2 and 5 mixed), byte for byte: each entry's client given its
// nonce, salt and blind, the batch of those pending tokens (closed once it is made) reproduces
// token_request and finalizes token_response into every entry's token; our issuers (one per key)
// answer a response that finalizes into the same tokens on 1, 2 or all threads and refuse the
// batch over a smaller limit; the first issuer alone serves its own entries only (nil for the
// others); each token redeems once.
func TestBatchGenericVectors(t *testing.T) {
	vectors := loadJSON(t, genericVectorsPath)
	if len(vectors) != 3 {
		t.Fatalf("%d generic vectors, want 3", len(vectors))
	}
	for i, v := range vectors {
		v := v
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			request, response := hexField(t, v, "token_request"), hexField(t, v, "token_response")
			entries, ok := v["issuance"].([]interface{})
			if !ok || len(entries) < 2 {
				t.Fatal("vector without issuance entries")
			}
			var issuers []*genericIssuer
			owner := make([]int, len(entries))
			challenges := make([][]byte, len(entries))
			tokens := make([][]byte, len(entries))
			pending := make([]*PendingToken, len(entries))
			for k, raw := range entries {
				e, ok := raw.(map[string]interface{})
				if !ok {
					t.Fatal("issuance entry is not an object")
				}
				typeBytes := hexField(t, e, "token_type")
				tokenType := uint16(typeBytes[0])<<8 | uint16(typeBytes[1])
				sk, pk := hexField(t, e, "sk_s"), hexField(t, e, "pk_s")
				challenges[k], tokens[k] = hexField(t, e, "token_challenge"), hexField(t, e, "token")
				nonce, salt, blind := hexField(t, e, "nonce"), hexField(t, e, "salt"), hexField(t, e, "blind")
				owner[k] = -1
				for j, g := range issuers {
					if g.issuer.TokenType() == tokenType && bytes.Equal(g.pk, pk) {
						owner[k] = j
					}
				}
				if owner[k] < 0 {
					g := newGenericIssuer(t, tokenType, sk, pk)
					defer g.close()
					owner[k] = len(issuers)
					issuers = append(issuers, g)
				}
				var client *Client
				var err error
				if tokenType == TokenTypeBlindRSA {
					client, err = NewClient(pk)
				} else {
					if salt != nil {
						t.Fatal("VOPRF entry with a salt")
					}
					client, err = NewVoprfClient(tokenType, pk)
				}
				mustNoErr(t, err)
				pending[k], err = client.RequestWithRandomness(challenges[k], nonce, salt, blind)
				mustNoErr(t, err)
				client.Close()
			}

			batch, err := NewPendingGenericBatch(pending)
			mustNoErr(t, err)
			defer batch.Close()
			for _, p := range pending {
				p.Close() // the batch holds its own references
			}
			if batch.Count() != len(entries) {
				t.Errorf("Count %d, want %d", batch.Count(), len(entries))
			}
			if !bytes.Equal(batch.Request(), request) {
				t.Fatalf("request %x, want %x", batch.Request(), request)
			}
			got, err := batch.Finalize(response)
			mustNoErr(t, err)
			sameTokens(t, "vector's response", got, tokens)

			all := make([]*Issuer, len(issuers))
			for j, g := range issuers {
				all[j] = g.issuer
			}
			for _, threads := range []int{1, 2, 0} {
				ours, err := IssueGeneric(all, request, 100, threads)
				mustNoErr(t, err)
				if len(ours) != len(response) {
					t.Errorf("%d threads: our response of %d bytes, want %d", threads, len(ours), len(response))
				}
				got, err := batch.Finalize(ours)
				mustNoErr(t, err)
				sameTokens(t, fmt.Sprintf("our response on %d threads", threads), got, tokens)
			}
			_, err = IssueGeneric(all, request, len(entries)-1, 0)
			wantErr(t, err, ErrTooLarge)

			// The first issuer alone: the entries of the other keys come back nil.
			partial, err := IssueGeneric(all[:1], request, 100, 0)
			mustNoErr(t, err)
			got, err = batch.Finalize(partial)
			mustNoErr(t, err)
			for k := range entries {
				if owner[k] == 0 && !bytes.Equal(got[k], tokens[k]) {
					t.Errorf("partial: entry %d is %x, want %x", k, got[k], tokens[k])
				}
				if owner[k] != 0 && got[k] != nil {
					t.Errorf("partial: entry %d of another key is %x, want nil", k, got[k])
				}
			}

			for k, token := range tokens {
				r := issuers[owner[k]].redeemer
				mustNoErr(t, r.Redeem(token, challenges[k]))
				wantErr(t, r.Redeem(token, challenges[k]), ErrAlreadySpent)
			}
		})
	}
}

// A fresh amortized cycle of each VOPRF type: a batch of 10, issued, finalized, each token
// redeemed once; the batch finalizes again (same tokens) and survives its client's Close.
func TestBatchAmortizedFullCycle(t *testing.T) {
	for _, typ := range voprfTypes {
		typ := typ
		t.Run(typ.name, func(t *testing.T) {
			issuer, err := GenerateVoprfIssuer(typ.tokenType)
			mustNoErr(t, err)
			defer issuer.Close()
			challenge := voprfChallenge(t, typ.tokenType)
			client, err := NewVoprfClient(typ.tokenType, issuer.PublicKey())
			mustNoErr(t, err)
			batch, err := client.RequestAmortized(challenge, 10)
			mustNoErr(t, err)
			defer batch.Close()
			client.Close()
			response, err := issuer.IssueAmortized(batch.Request(), 10)
			mustNoErr(t, err)
			tokens, err := batch.Finalize(response)
			mustNoErr(t, err)
			if len(tokens) != 10 {
				t.Fatalf("%d tokens, want 10", len(tokens))
			}
			again, err := batch.Finalize(response)
			mustNoErr(t, err)
			sameTokens(t, "second finalize", again, tokens)
			redeemer, err := NewRedeemerFromIssuer(issuer, "memory:")
			mustNoErr(t, err)
			defer redeemer.Close()
			seen := map[string]bool{}
			for _, token := range tokens {
				if len(token) != typ.tokenLen || seen[string(token)] {
					t.Fatalf("token of %d bytes, or twice", len(token))
				}
				seen[string(token)] = true
				mustNoErr(t, redeemer.Redeem(token, challenge))
				wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
			}
		})
	}
}

// freshGeneric is a fresh issuer of each type (2, 1, 5), a challenge and a client of each.
type freshGeneric struct {
	issuers    []*Issuer
	challenges [][]byte
	clients    []*Client
}

func newFreshGeneric(t testing.TB) *freshGeneric {
	t.Helper()
	f := &freshGeneric{}
	rsa := testIssuer(t)
	rsaClient, err := NewClient(rsa.PublicKey())
	mustNoErr(t, err)
	f.issuers = append(f.issuers, rsa)
	f.challenges = append(f.challenges, defaultChallenge(t))
	f.clients = append(f.clients, rsaClient)
	for _, typ := range voprfTypes {
		issuer, err := GenerateVoprfIssuer(typ.tokenType)
		mustNoErr(t, err)
		client, err := NewVoprfClient(typ.tokenType, issuer.PublicKey())
		mustNoErr(t, err)
		f.issuers = append(f.issuers, issuer)
		f.challenges = append(f.challenges, voprfChallenge(t, typ.tokenType))
		f.clients = append(f.clients, client)
	}
	return f
}

func (f *freshGeneric) close() {
	for k, c := range f.clients {
		c.Close()
		if k > 0 { // the shared RSA issuer stays open
			f.issuers[k].Close()
		}
	}
}

// pending makes one pending token per entry of kinds (an index into f's issuers).
func (f *freshGeneric) pending(t testing.TB, kinds []int) []*PendingToken {
	t.Helper()
	out := make([]*PendingToken, len(kinds))
	for k, kind := range kinds {
		p, err := f.clients[kind].Request(f.challenges[kind])
		mustNoErr(t, err)
		out[k] = p
	}
	return out
}

// A fresh generic cycle (types 2, 1, 5 and 2 again in one batch), each token redeemed once; and a
// partial batch: an entry of a key no issuer given holds comes back nil, the others are tokens.
func TestBatchGenericFullCycle(t *testing.T) {
	f := newFreshGeneric(t)
	defer f.close()
	kinds := []int{0, 1, 2, 0, 2}
	pending := f.pending(t, kinds)
	batch, err := NewPendingGenericBatch(pending)
	mustNoErr(t, err)
	defer batch.Close()
	response, err := IssueGeneric(f.issuers, batch.Request(), len(kinds), 0)
	mustNoErr(t, err)
	tokens, err := batch.Finalize(response)
	mustNoErr(t, err)
	redeemers := make([]*Redeemer, len(f.issuers))
	for k, issuer := range f.issuers {
		redeemers[k], err = NewRedeemerFromIssuer(issuer, "memory:")
		mustNoErr(t, err)
		defer redeemers[k].Close()
	}
	wantLen := []int{TokenLen, VoprfP384TokenLen, VoprfRistretto255TokenLen}
	for k, token := range tokens {
		kind := kinds[k]
		if len(token) != wantLen[kind] {
			t.Fatalf("entry %d: token of %d bytes, want %d", k, len(token), wantLen[kind])
		}
		single, err := pending[k].Finalize(nil)
		if err == nil || single != nil {
			t.Error("a pending token finalized an empty response")
		}
		mustNoErr(t, redeemers[kind].Redeem(token, f.challenges[kind]))
		wantErr(t, redeemers[kind].Redeem(token, f.challenges[kind]), ErrAlreadySpent)
	}
	for _, p := range pending {
		p.Close()
	}

	// Partial: entries 1 and 3 are of a type 1 key no issuer given holds.
	stranger, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	defer stranger.Close()
	strangerClient, err := NewVoprfClient(TokenTypeVoprfP384, stranger.PublicKey())
	mustNoErr(t, err)
	defer strangerClient.Close()
	mixed := f.pending(t, []int{0, 1, 2})
	foreign, err := strangerClient.Request(f.challenges[1])
	mustNoErr(t, err)
	mixed = []*PendingToken{mixed[0], foreign, mixed[1], foreign, mixed[2]}
	partialBatch, err := NewPendingGenericBatch(mixed)
	mustNoErr(t, err)
	defer partialBatch.Close()
	for _, p := range mixed {
		p.Close()
	}
	response, err = IssueGeneric(f.issuers, partialBatch.Request(), 5, 1)
	mustNoErr(t, err)
	tokens, err = partialBatch.Finalize(response)
	mustNoErr(t, err)
	if len(tokens) != 5 || tokens[1] != nil || tokens[3] != nil {
		t.Fatalf("partial: entries 1 and 3 not nil (%d entries)", len(tokens))
	}
	for k, kind := range map[int]int{0: 0, 2: 1, 4: 2} {
		mustNoErr(t, redeemers[kind].Redeem(tokens[k], f.challenges[kind]))
	}
	// Every entry refused: no error, every entry nil.
	response, err = IssueGeneric([]*Issuer{stranger}, batch.Request(), 5, 0)
	mustNoErr(t, err)
	tokens, err = batch.Finalize(response)
	mustNoErr(t, err)
	for k, token := range tokens {
		if token != nil {
			t.Errorf("all refused: entry %d is not nil", k)
		}
	}
}

// The error paths of the batch API.
func TestBatchErrorPaths(t *testing.T) {
	f := newFreshGeneric(t)
	defer f.close()
	rsaClient, p384Client := f.clients[0], f.clients[1]
	p384Issuer, r255Issuer := f.issuers[1], f.issuers[2]
	challenge := f.challenges[1]

	// Client side.
	for _, count := range []int{0, -1, 1025} {
		_, err := p384Client.RequestAmortized(challenge, count)
		wantErr(t, err, ErrInvalidInput)
	}
	_, err := p384Client.RequestAmortized([]byte{0, 1, 2}, 3)
	wantErr(t, err, ErrInvalidInput)
	_, err = rsaClient.RequestAmortized(f.challenges[0], 3)
	wantErr(t, err, ErrUnsupportedToken)
	_, err = p384Client.RequestAmortized(f.challenges[2], 3)
	wantErr(t, err, ErrUnsupportedToken)
	nonces := bytes.Repeat([]byte{7}, 2*NonceLen)
	_, err = p384Client.RequestAmortizedWithRandomness(challenge, nonces, make([]byte, 2*VoprfP384ScalarLen)) // zero blinds
	wantErr(t, err, ErrInvalidInput)
	_, err = p384Client.RequestAmortizedWithRandomness(challenge, nonces[:NonceLen+1], bytes.Repeat([]byte{1}, VoprfP384ScalarLen))
	wantErr(t, err, ErrInvalidInput)
	_, err = p384Client.RequestAmortizedWithRandomness(challenge, nil, nil)
	wantErr(t, err, ErrInvalidInput)

	_, err = NewPendingGenericBatch(nil)
	wantErr(t, err, ErrInvalidInput)
	_, err = NewPendingGenericBatch([]*PendingToken{nil})
	wantErr(t, err, ErrInvalidInput)
	closed := f.pending(t, []int{1})[0]
	closed.Close()
	_, err = NewPendingGenericBatch([]*PendingToken{closed})
	wantErr(t, err, ErrClosed)

	// Issuer side: too many tokens, malformed bytes, another type or key.
	batch, err := p384Client.RequestAmortized(challenge, 4)
	mustNoErr(t, err)
	defer batch.Close()
	request := batch.Request()
	_, err = p384Issuer.IssueAmortized(request, 3)
	wantErr(t, err, ErrTooLarge)
	var e *Error
	if _, err = p384Issuer.IssueAmortized(request, 0); !errors.As(err, &e) || e.Code() != CodeTooLarge || e.HTTPStatus() != 413 || int(e.Code()) != -32042 {
		t.Errorf("max 0: %v, want CodeTooLarge (-32042, HTTP 413)", err)
	}
	_, err = p384Issuer.IssueAmortized(request, -1)
	wantErr(t, err, ErrInvalidInput)
	for _, bad := range [][]byte{nil, request[:len(request)-1], append(append([]byte(nil), request...), 0), {0, 1, 0}} {
		_, err = p384Issuer.IssueAmortized(bad, 100)
		wantErr(t, err, ErrUnprocessableBlindedToken)
	}
	_, err = r255Issuer.IssueAmortized(request, 100)
	wantErr(t, err, ErrUnprocessableBlindedToken)
	_, err = testIssuer(t).IssueAmortized(request, 100)
	wantErr(t, err, ErrUnprocessableBlindedToken)
	other, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	_, err = other.IssueAmortized(request, 100)
	wantErr(t, err, ErrUnprocessableBlindedToken)
	otherResponse, err := other.IssueAmortized(append(request[:2:2], append([]byte{other.TokenKeyID()[31]}, request[3:]...)...), 100)
	mustNoErr(t, err) // the same elements under the other key: the proof does not verify for ours
	other.Close()

	// Finalize: malformed responses, a proof that does not verify.
	response, err := p384Issuer.IssueAmortized(request, 100)
	mustNoErr(t, err)
	_, err = batch.Finalize(response[:len(response)-1])
	wantErr(t, err, ErrInvalidInput)
	_, err = batch.Finalize(nil)
	wantErr(t, err, ErrInvalidInput)
	flipped := append([]byte(nil), response...)
	flipped[len(flipped)-1] ^= 1
	_, err = batch.Finalize(flipped)
	wantErr(t, err, ErrVerificationFailed)
	_, err = batch.Finalize(otherResponse)
	wantErr(t, err, ErrVerificationFailed)
	small, err := p384Client.RequestAmortized(challenge, 3)
	mustNoErr(t, err)
	defer small.Close()
	_, err = small.Finalize(response) // 4 elements for a batch of 3
	wantErr(t, err, ErrInvalidInput)

	// Generic: too many, malformed, no issuers, a nil or closed issuer, a bad response.
	pending := f.pending(t, []int{0, 1, 2})
	generic, err := NewPendingGenericBatch(pending)
	mustNoErr(t, err)
	defer generic.Close()
	for _, p := range pending {
		p.Close()
	}
	greq := generic.Request()
	_, err = IssueGeneric(f.issuers, greq, 2, 0)
	wantErr(t, err, ErrTooLarge)
	for _, bad := range [][]byte{nil, greq[:len(greq)-1], append(append([]byte(nil), greq...), 0)} {
		_, err = IssueGeneric(f.issuers, bad, 100, 0)
		wantErr(t, err, ErrUnprocessableBlindedToken)
	}
	_, err = IssueGeneric(nil, greq, 100, 0)
	wantErr(t, err, ErrInvalidInput)
	_, err = IssueGeneric([]*Issuer{p384Issuer, nil}, greq, 100, 0)
	wantErr(t, err, ErrInvalidInput)
	_, err = IssueGeneric(f.issuers, greq, -1, 0)
	wantErr(t, err, ErrInvalidInput)
	_, err = IssueGeneric(f.issuers, greq, 100, -1)
	wantErr(t, err, ErrInvalidInput)
	// The same issuer twice is fine (locked once).
	_, err = IssueGeneric([]*Issuer{p384Issuer, p384Issuer, f.issuers[0], r255Issuer}, greq, 100, 0)
	mustNoErr(t, err)
	gresp, err := IssueGeneric(f.issuers, greq, 100, 0)
	mustNoErr(t, err)
	_, err = generic.Finalize(gresp[:len(gresp)-1])
	wantErr(t, err, ErrInvalidInput)
	_, err = generic.Finalize(response) // an amortized response
	if err == nil {
		t.Error("a generic batch finalized an amortized response")
	}
	gone, err := GenerateVoprfIssuer(TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	gone.Close()
	_, err = IssueGeneric([]*Issuer{p384Issuer, gone}, greq, 100, 0)
	wantErr(t, err, ErrClosed)

	// After Close: ErrClosed; Request and Count stay available; Close is idempotent.
	mustNoErr(t, batch.Close())
	mustNoErr(t, batch.Close())
	_, err = batch.Finalize(response)
	wantErr(t, err, ErrClosed)
	if !bytes.Equal(batch.Request(), request) || batch.Count() != 4 {
		t.Error("Request or Count changed after Close")
	}
	mustNoErr(t, generic.Close())
	mustNoErr(t, generic.Close())
	_, err = generic.Finalize(gresp)
	wantErr(t, err, ErrClosed)
	if !bytes.Equal(generic.Request(), greq) || generic.Count() != 3 {
		t.Error("generic Request or Count changed after Close")
	}
	closedClient, err := NewVoprfClient(TokenTypeVoprfP384, p384Issuer.PublicKey())
	mustNoErr(t, err)
	closedClient.Close()
	_, err = closedClient.RequestAmortized(challenge, 2)
	wantErr(t, err, ErrClosed)
	_, err = closedClient.RequestAmortizedWithRandomness(challenge, nonces, nil)
	wantErr(t, err, ErrClosed)
	closedIssuer, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	closedIssuer.Close()
	_, err = closedIssuer.IssueAmortized(request, 100)
	wantErr(t, err, ErrClosed)

	// Each Close frees one C handle, once.
	before := [2]int64{freed.pendingBatches.Load(), freed.pendingGenericBatches.Load()}
	b1, err := p384Client.RequestAmortized(challenge, 1)
	mustNoErr(t, err)
	p := f.pending(t, []int{2})
	b2, err := NewPendingGenericBatch(p)
	mustNoErr(t, err)
	p[0].Close()
	b1.Close()
	b1.Close()
	b2.Close()
	b2.Close()
	after := [2]int64{freed.pendingBatches.Load(), freed.pendingGenericBatches.Load()}
	if after[0]-before[0] < 1 || after[1]-before[1] < 1 {
		t.Errorf("frees %v -> %v: a Close freed nothing", before, after)
	}
}

// Goroutines share one client, one issuer of each kind and one batch of each kind: they make
// amortized and generic batches, issue and finalize them, and finalize the shared batches, all at
// once (under the race detector and cgocheck=2); every token redeems once.
func TestBatchConcurrentUse(t *testing.T) {
	f := newFreshGeneric(t)
	defer f.close()
	const goroutines = 16
	redeemers := make([]*Redeemer, len(f.issuers))
	for k, issuer := range f.issuers {
		r, err := NewRedeemerFromIssuer(issuer, "memory:")
		mustNoErr(t, err)
		defer r.Close()
		redeemers[k] = r
	}
	shared, err := f.clients[2].RequestAmortized(f.challenges[2], 5)
	mustNoErr(t, err)
	defer shared.Close()
	sharedResponse, err := f.issuers[2].IssueAmortized(shared.Request(), 5)
	mustNoErr(t, err)
	sharedTokens, err := shared.Finalize(sharedResponse)
	mustNoErr(t, err)
	sharedPending := f.pending(t, []int{0, 1, 2})
	sharedGeneric, err := NewPendingGenericBatch(sharedPending)
	mustNoErr(t, err)
	defer sharedGeneric.Close()
	sharedGenericResponse, err := IssueGeneric(f.issuers, sharedGeneric.Request(), 3, 0)
	mustNoErr(t, err)
	sharedGenericTokens, err := sharedGeneric.Finalize(sharedGenericResponse)
	mustNoErr(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*4)
	for g := 0; g < goroutines; g++ {
		g := g
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := 1 + g%2
			batch, err := f.clients[kind].RequestAmortized(f.challenges[kind], 3)
			if err != nil {
				errs <- err
				return
			}
			defer batch.Close()
			response, err := f.issuers[kind].IssueAmortized(batch.Request(), 3)
			if err != nil {
				errs <- err
				return
			}
			tokens, err := batch.Finalize(response)
			if err != nil {
				errs <- err
				return
			}
			for _, token := range tokens {
				if err := redeemers[kind].Redeem(token, f.challenges[kind]); err != nil {
					errs <- err
				}
			}

			// The shared pending tokens in a batch of this goroutine's, and the shared batches.
			generic, err := NewPendingGenericBatch([]*PendingToken{sharedPending[g%3], sharedPending[(g+1)%3]})
			if err != nil {
				errs <- err
				return
			}
			defer generic.Close()
			gresp, err := IssueGeneric(f.issuers, generic.Request(), 2, 1+g%3)
			if err != nil {
				errs <- err
				return
			}
			if gtokens, err := generic.Finalize(gresp); err != nil || gtokens[0] == nil || gtokens[1] == nil {
				errs <- fmt.Errorf("generic finalize: %v", err)
			}
			if again, err := shared.Finalize(sharedResponse); err != nil || !bytes.Equal(bytes.Join(again, nil), bytes.Join(sharedTokens, nil)) {
				errs <- fmt.Errorf("shared finalize: %v", err)
			}
			if again, err := sharedGeneric.Finalize(sharedGenericResponse); err != nil || !bytes.Equal(bytes.Join(again, nil), bytes.Join(sharedGenericTokens, nil)) {
				errs <- fmt.Errorf("shared generic finalize: %v", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range sharedPending {
		p.Close()
	}
	for _, token := range sharedTokens {
		mustNoErr(t, redeemers[2].Redeem(token, f.challenges[2]))
	}
	for k, token := range sharedGenericTokens {
		mustNoErr(t, redeemers[k].Redeem(token, f.challenges[k]))
		wantErr(t, redeemers[k].Redeem(token, f.challenges[k]), ErrAlreadySpent)
	}
}
