package privacypass

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// voprfType is what the tests need to know of one VOPRF token type.
type voprfType struct {
	name                                              string
	tokenType                                         uint16
	pemLabel                                          string // the label of privacypassd's key file
	publicKeyLen, scalarLen                           int
	tokenRequestLen, tokenResponseLen, tokenLen, elen int // elen: a serialized group element
}

var (
	voprfP384 = voprfType{"p384", TokenTypeVoprfP384, "PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY",
		VoprfP384PublicKeyLen, VoprfP384ScalarLen,
		VoprfP384TokenRequestLen, VoprfP384TokenResponseLen, VoprfP384TokenLen, 49}
	voprfRistretto255 = voprfType{"ristretto255", TokenTypeVoprfRistretto255, "PRIVACYPASS VOPRF RISTRETTO255-SHA512 PRIVATE KEY",
		VoprfRistretto255PublicKeyLen, VoprfRistretto255ScalarLen,
		VoprfRistretto255TokenRequestLen, VoprfRistretto255TokenResponseLen, VoprfRistretto255TokenLen, 32}
	voprfTypes = []voprfType{voprfP384, voprfRistretto255}
)

// The files of VOPRF vectors: the private key is skS or sk_s, the public key pkS or pk_s.
var voprfVectorFiles = []struct {
	path       string
	typ        voprfType
	count      int
	skS, pkS   string
	descriptor string
}{
	{"../../tests/vectors/rfc9578-type1-voprf-p384.json", voprfP384, 5, "skS", "pkS", "RFC 9578 type 1"},
	{"../../tests/vectors/batched-private_p384_rs.json", voprfP384, 5, "sk_s", "pk_s", "privacypass (Rust) type 1"},
	{"../../tests/vectors/batched-private_ristretto255_rs.json", voprfRistretto255, 5, "sk_s", "pk_s", "privacypass (Rust) type 5"},
	{"../../tests/vectors/batched-tokens-draft-voprf-ristretto255.json", voprfRistretto255, 10, "skS", "pkS", "batched-tokens draft type 5"},
}

// voprfKeyFile is the scalar as privacypassd's key file: PEM, the standard base64 of the scalar.
func voprfKeyFile(typ voprfType, scalar []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ.pemLabel, Bytes: scalar})
}

// newVoprfToken makes a fresh token for challenge from a VOPRF issuer, through the client API.
func newVoprfToken(t testing.TB, issuer *Issuer, challenge []byte) []byte {
	t.Helper()
	client, err := NewVoprfClient(issuer.TokenType(), issuer.PublicKey())
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

func voprfChallenge(t testing.TB, tokenType uint16) []byte {
	t.Helper()
	challenge, err := Challenge{TokenType: tokenType, IssuerName: "issuer.example",
		OriginInfo: []string{"origin.example"}}.Encode()
	mustNoErr(t, err)
	return challenge
}

// Every VOPRF vector (types 1 and 5), byte for byte: the issuer from the vector's scalar (and
// from the same key as a key file) has its public key, the client reproduces the TokenRequest
// from its nonce and blind and finalizes its TokenResponse into its Token, the issuer's own
// response (the same evaluation, a fresh proof) finalizes into the same Token, a redeemer from
// the issuer spends it once, and a verifier of public keys answers ErrPrivateTokenType.
func TestVoprfVectors(t *testing.T) {
	rsa, err := NewVerifier(testIssuer(t).PublicKey())
	mustNoErr(t, err)
	defer rsa.Close()
	publicOnly, err := NewRedeemer(rsa, "memory:")
	mustNoErr(t, err)
	defer publicOnly.Close()

	for _, file := range voprfVectorFiles {
		file := file
		vectors := loadVectorsFrom(t, file.path)
		if len(vectors) != file.count {
			t.Fatalf("%s: %d vectors, want %d", file.path, len(vectors), file.count)
		}
		for i, v := range vectors {
			v := v
			t.Run(fmt.Sprintf("%s/%d", filepath.Base(file.path), i), func(t *testing.T) {
				typ := file.typ
				sk, pk := v[file.skS], v[file.pkS]
				challenge, nonce, blind := v["token_challenge"], v["nonce"], v["blind"]
				request, response, token := v["token_request"], v["token_response"], v["token"]
				if len(sk) != typ.scalarLen || len(pk) != typ.publicKeyLen || len(request) != typ.tokenRequestLen ||
					len(response) != typ.tokenResponseLen || len(token) != typ.tokenLen {
					t.Fatalf("%s vector of unexpected sizes", file.descriptor)
				}

				issuer, err := NewIssuerFromScalar(typ.tokenType, sk)
				mustNoErr(t, err)
				defer issuer.Close()
				if issuer.TokenType() != typ.tokenType {
					t.Errorf("TokenType %d, want %d", issuer.TokenType(), typ.tokenType)
				}
				if !bytes.Equal(issuer.PublicKey(), pk) {
					t.Errorf("public key %x, want %x", issuer.PublicKey(), pk)
				}
				keyID := sha256.Sum256(pk)
				if !bytes.Equal(issuer.TokenKeyID(), keyID[:]) || !bytes.Equal(issuer.TokenKeyID(), token[66:98]) {
					t.Error("token_key_id differs from SHA-256 of the public key or from the token's")
				}
				fromPEM, err := NewIssuerFromPEM(voprfKeyFile(typ, sk))
				mustNoErr(t, err)
				defer fromPEM.Close()
				if fromPEM.TokenType() != typ.tokenType || !bytes.Equal(fromPEM.PublicKey(), pk) ||
					!bytes.Equal(fromPEM.TokenKeyID(), issuer.TokenKeyID()) {
					t.Error("the key file's issuer differs")
				}

				client, err := NewVoprfClient(typ.tokenType, pk)
				mustNoErr(t, err)
				defer client.Close()
				pending, err := client.RequestWithRandomness(challenge, nonce, nil, blind)
				mustNoErr(t, err)
				defer pending.Close()
				if !bytes.Equal(pending.Request(), request) {
					t.Errorf("TokenRequest %x, want %x", pending.Request(), request)
				}
				got, err := pending.Finalize(response)
				mustNoErr(t, err)
				if !bytes.Equal(got, token) {
					t.Errorf("Token %x, want %x", got, token)
				}

				// The issuer's own answers: the evaluated element is the vector's, the proof is
				// fresh, and every one finalizes into the vector's token.
				for _, issue := range []struct {
					name string
					call func() ([]byte, error)
				}{
					{"Issue", func() ([]byte, error) { return issuer.Issue(request) }},
					{"Issue (key file)", func() ([]byte, error) { return fromPEM.Issue(request) }},
					{"IssueBlinded (TokenRequest)", func() ([]byte, error) { return issuer.IssueBlinded(keyID[:], request) }},
					{"IssueBlinded (blinded element)", func() ([]byte, error) { return issuer.IssueBlinded(keyID[:], request[3:]) }},
				} {
					ours, err := issue.call()
					mustNoErr(t, err)
					if len(ours) != typ.tokenResponseLen || !bytes.Equal(ours[:typ.elen], response[:typ.elen]) {
						t.Errorf("%s: response %x, its evaluated element differs from %x", issue.name, ours, response[:typ.elen])
						continue
					}
					got, err := pending.Finalize(ours)
					mustNoErr(t, err)
					if !bytes.Equal(got, token) {
						t.Errorf("%s: finalizes into another token", issue.name)
					}
				}

				authorization, err := EncodeAuthorization(token)
				mustNoErr(t, err)
				parsed, err := ParseAuthorization(authorization)
				mustNoErr(t, err)
				if !bytes.Equal(parsed, token) {
					t.Error("ParseAuthorization differs")
				}

				redeemer, err := NewRedeemerFromIssuer(issuer, "memory:")
				mustNoErr(t, err)
				defer redeemer.Close()
				mustNoErr(t, redeemer.Redeem(token, challenge))
				wantErr(t, redeemer.Redeem(token, challenge), ErrAlreadySpent)
				wantErr(t, redeemer.Redeem(token, nil), ErrAlreadySpent)
				wantErr(t, redeemer.RedeemAuthorization(authorization, challenge), ErrAlreadySpent)

				// Public keys only: the distinct code, from a verifier and from its redeemer.
				err = rsa.Verify(token, challenge)
				wantErr(t, err, ErrPrivateTokenType)
				var e *Error
				if !errors.As(err, &e) || e.Code() != CodePrivateTokenType || e.Op() != "pp_verifier_verify" ||
					e.Code().JSONRPCCode() != -32603 || e.HTTPStatus() != 500 {
					t.Errorf("a private token type at a verifier: %#v", e)
				}
				wantErr(t, rsa.Verify(token, nil), ErrPrivateTokenType)
				wantErr(t, rsa.VerifyAuthorization(authorization, nil), ErrPrivateTokenType)
				wantErr(t, publicOnly.Redeem(token, nil), ErrPrivateTokenType)
				wantErr(t, publicOnly.RedeemAuthorization(authorization, nil), ErrPrivateTokenType)
			})
		}
	}
}

// The whole protocol for types 1 and 5 with fresh keys: issue, finalize, redeem with the
// issuer's key, double spend, on the memory: and rocksdb: stores.
func TestVoprfFullCycle(t *testing.T) {
	for _, typ := range voprfTypes {
		typ := typ
		for _, store := range []string{"memory:", "rocksdb:" + filepath.Join(t.TempDir(), "spends-"+typ.name)} {
			store := store
			t.Run(typ.name+"/"+store[:strings.IndexByte(store, ':')], func(t *testing.T) {
				issuer, err := GenerateVoprfIssuer(typ.tokenType)
				mustNoErr(t, err)
				defer issuer.Close()
				if issuer.TokenType() != typ.tokenType {
					t.Fatalf("TokenType %d, want %d", issuer.TokenType(), typ.tokenType)
				}
				key := issuer.PublicKey()
				if len(key) != typ.publicKeyLen || len(issuer.TokenKeyID()) != TokenKeyIDLen {
					t.Fatalf("public key of %d bytes, token_key_id of %d", len(key), len(issuer.TokenKeyID()))
				}
				challenge := voprfChallenge(t, typ.tokenType)
				if !bytes.Equal(challenge[:2], []byte{0, byte(typ.tokenType)}) {
					t.Fatalf("challenge of type %x", challenge[:2])
				}
				www, err := WWWAuthenticate(challenge, key)
				mustNoErr(t, err)
				if !strings.HasPrefix(www, `PrivateToken challenge="`) {
					t.Errorf("WWW-Authenticate %q", www)
				}

				client, err := NewVoprfClient(issuer.TokenType(), key)
				mustNoErr(t, err)
				defer client.Close()
				pending, err := client.Request(challenge)
				mustNoErr(t, err)
				defer pending.Close()
				request := pending.Request()
				if len(request) != typ.tokenRequestLen || !bytes.Equal(request[:2], []byte{0, byte(typ.tokenType)}) {
					t.Fatalf("TokenRequest %x", request)
				}
				response, err := issuer.Issue(request)
				mustNoErr(t, err)
				if len(response) != typ.tokenResponseLen {
					t.Fatalf("TokenResponse of %d bytes", len(response))
				}

				// A proof that does not verify is refused, and so is a response of another length.
				response[len(response)-1] ^= 1
				_, err = pending.Finalize(response)
				wantErr(t, err, ErrVerificationFailed)
				response[len(response)-1] ^= 1
				_, err = pending.Finalize(response[:len(response)-1])
				wantErr(t, err, ErrInvalidInput)

				token, err := pending.Finalize(response)
				mustNoErr(t, err)
				if len(token) != typ.tokenLen {
					t.Fatalf("Token of %d bytes", len(token))
				}
				again, err := pending.Finalize(response) // finalizing twice is allowed
				mustNoErr(t, err)
				if !bytes.Equal(again, token) {
					t.Error("second Finalize differs")
				}
				authorization, err := EncodeAuthorization(token)
				mustNoErr(t, err)

				redeemer, err := NewRedeemerFromIssuer(issuer, store)
				mustNoErr(t, err)
				defer redeemer.Close()
				other, err := Challenge{TokenType: typ.tokenType, IssuerName: "other.example"}.Encode()
				mustNoErr(t, err)
				wantErr(t, redeemer.Redeem(token, other), ErrVerificationFailed) // refused, not spent
				forged := append([]byte(nil), token...)
				forged[len(forged)-1] ^= 1
				wantErr(t, redeemer.Redeem(forged, nil), ErrVerificationFailed)
				mustNoErr(t, redeemer.RedeemAuthorization(authorization, challenge))
				err = redeemer.Redeem(token, challenge)
				wantErr(t, err, ErrAlreadySpent)
				var e *Error
				if !errors.As(err, &e) || e.Op() != "pp_redeemer_redeem" || e.HTTPStatus() != 403 {
					t.Errorf("double spend: %#v", e)
				}
				wantErr(t, redeemer.RedeemAuthorization(authorization, nil), ErrAlreadySpent)

				// Another key of the same type does not verify the token.
				stranger, err := GenerateVoprfIssuer(typ.tokenType)
				mustNoErr(t, err)
				defer stranger.Close()
				strangers, err := NewRedeemerFromIssuer(stranger, "memory:")
				mustNoErr(t, err)
				defer strangers.Close()
				wantErr(t, strangers.Redeem(newVoprfToken(t, issuer, challenge), nil), ErrVerificationFailed)

				if strings.HasPrefix(store, "rocksdb:") { // durable: a new redeemer finds the spend
					mustNoErr(t, redeemer.Close())
					reopened, err := NewRedeemerFromIssuer(issuer, store)
					mustNoErr(t, err)
					defer reopened.Close()
					wantErr(t, reopened.Redeem(token, challenge), ErrAlreadySpent)
					mustNoErr(t, reopened.Redeem(newVoprfToken(t, issuer, challenge), challenge))
				}
			})
		}
	}
}

// A redeemer keeps its own reference to the issuer's key (the issuer may be closed first), and
// the tokens of each type go to their own issuers only.
func TestVoprfMixedTypes(t *testing.T) {
	rsaIssuer := testIssuer(t)
	rsaChallenge := defaultChallenge(t)
	rsaToken := newToken(t, rsaIssuer, rsaChallenge)
	rsaClient, err := NewClient(rsaIssuer.PublicKey())
	mustNoErr(t, err)
	defer rsaClient.Close()
	rsaPending, err := rsaClient.Request(rsaChallenge)
	mustNoErr(t, err)
	defer rsaPending.Close()

	// An RSA issuer's redeemer verifies with its public key, as NewRedeemer would.
	if rsaIssuer.TokenType() != TokenTypeBlindRSA {
		t.Errorf("RSA issuer's TokenType %d", rsaIssuer.TokenType())
	}
	fromRSA, err := NewRedeemerFromIssuer(rsaIssuer, "memory:")
	mustNoErr(t, err)
	defer fromRSA.Close()
	mustNoErr(t, fromRSA.Redeem(rsaToken, rsaChallenge))
	wantErr(t, fromRSA.Redeem(rsaToken, rsaChallenge), ErrAlreadySpent)

	tokens := map[uint16][]byte{}
	redeemers := map[uint16]*Redeemer{}
	for _, typ := range voprfTypes {
		issuer, err := GenerateVoprfIssuer(typ.tokenType)
		mustNoErr(t, err)
		challenge := voprfChallenge(t, typ.tokenType)
		tokens[typ.tokenType] = newVoprfToken(t, issuer, challenge)
		redeemer, err := NewRedeemerFromIssuer(issuer, "memory:")
		mustNoErr(t, err)
		defer redeemer.Close()
		redeemers[typ.tokenType] = redeemer

		client, err := NewVoprfClient(typ.tokenType, issuer.PublicKey())
		mustNoErr(t, err)
		defer client.Close()
		pending, err := client.Request(challenge)
		mustNoErr(t, err)
		defer pending.Close()
		// A VOPRF client refuses a type 2 challenge and the RSA client a VOPRF one; each issuer
		// refuses the other's requests.
		_, err = client.Request(rsaChallenge)
		wantErr(t, err, ErrUnsupportedToken)
		_, err = rsaClient.Request(challenge)
		wantErr(t, err, ErrUnsupportedToken)
		_, err = rsaIssuer.Issue(pending.Request())
		wantErr(t, err, ErrUnprocessableBlindedToken)
		_, err = issuer.Issue(rsaPending.Request())
		wantErr(t, err, ErrUnprocessableBlindedToken)

		// The issuer closed: the redeemer keeps the key; the issuer's getters still answer.
		mustNoErr(t, issuer.Close())
		_, err = issuer.Issue(pending.Request())
		wantErr(t, err, ErrClosed)
		_, err = NewRedeemerFromIssuer(issuer, "memory:")
		wantErr(t, err, ErrClosed)
		if issuer.TokenType() != typ.tokenType || len(issuer.PublicKey()) != typ.publicKeyLen ||
			len(issuer.TokenKeyID()) != TokenKeyIDLen {
			t.Error("the issuer's token type or keys are gone after Close")
		}
	}
	p384, ristretto := tokens[TokenTypeVoprfP384], tokens[TokenTypeVoprfRistretto255]
	// A redeemer holding no key of a token's type does not serve that type: -32022.
	wantErr(t, redeemers[TokenTypeVoprfP384].Redeem(ristretto, nil), ErrUnsupportedToken)
	wantErr(t, redeemers[TokenTypeVoprfRistretto255].Redeem(p384, nil), ErrUnsupportedToken)
	wantErr(t, redeemers[TokenTypeVoprfP384].Redeem(rsaToken, nil), ErrVerificationFailed)
	wantErr(t, fromRSA.Redeem(p384, nil), ErrPrivateTokenType)
	wantErr(t, fromRSA.Redeem(ristretto, nil), ErrPrivateTokenType)
	mustNoErr(t, redeemers[TokenTypeVoprfP384].Redeem(p384, nil))
	mustNoErr(t, redeemers[TokenTypeVoprfRistretto255].Redeem(ristretto, nil))
	wantErr(t, redeemers[TokenTypeVoprfRistretto255].Redeem(ristretto, nil), ErrAlreadySpent)
}

func TestVoprfErrorPaths(t *testing.T) {
	ones := bytes.Repeat([]byte{0xff}, 64)
	zeros := make([]byte, 64)
	op := func(err error) string {
		var e *Error
		if errors.As(err, &e) {
			return e.Op()
		}
		return ""
	}

	// Token types: only 1 and 5 are VOPRF types.
	for _, tokenType := range []uint16{0, TokenTypeBlindRSA, 3, 4, 6, 7, 0xffff} {
		_, err := GenerateVoprfIssuer(tokenType)
		wantErr(t, err, ErrUnsupportedToken)
		if op(err) != "pp_issuer_generate_voprf" {
			t.Errorf("GenerateVoprfIssuer(%d): %v", tokenType, err)
		}
		_, err = NewIssuerFromScalar(tokenType, ones[:48])
		wantErr(t, err, ErrUnsupportedToken)
		_, err = NewVoprfClient(tokenType, ones[:49])
		wantErr(t, err, ErrUnsupportedToken)
		if op(err) != "pp_client_new_voprf" {
			t.Errorf("NewVoprfClient(%d): %v", tokenType, err)
		}
	}

	// Scalars that are not canonical nonzero scalars of the group, or of the other group's size.
	for _, c := range []struct {
		tokenType uint16
		scalar    []byte
	}{
		{TokenTypeVoprfP384, zeros[:48]},
		{TokenTypeVoprfP384, ones[:48]}, // above the group order
		{TokenTypeVoprfP384, ones[:47]},
		{TokenTypeVoprfP384, ones[:32]},
		{TokenTypeVoprfP384, nil},
		{TokenTypeVoprfRistretto255, zeros[:32]},
		{TokenTypeVoprfRistretto255, ones[:32]},
		{TokenTypeVoprfRistretto255, ones[:48]},
		{TokenTypeVoprfRistretto255, nil},
	} {
		_, err := NewIssuerFromScalar(c.tokenType, c.scalar)
		wantErr(t, err, ErrInvalidKey)
		if op(err) != "pp_issuer_new_from_scalar" {
			t.Errorf("NewIssuerFromScalar(%d, %x): %v", c.tokenType, c.scalar, err)
		}
	}
	_, err := NewIssuerFromPEM(voprfKeyFile(voprfP384, zeros[:48]))
	wantErr(t, err, ErrInvalidKey)
	_, err = NewIssuerFromPEM([]byte("-----BEGIN PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\nAAAA\n" +
		"-----END PRIVACYPASS VOPRF P384-SHA384 PRIVATE KEY-----\n"))
	wantErr(t, err, ErrInvalidKey)

	// Public keys that are not elements of the group.
	p384, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	defer p384.Close()
	ristretto, err := GenerateVoprfIssuer(TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	defer ristretto.Close()
	for _, c := range []struct {
		tokenType uint16
		key       []byte
	}{
		{TokenTypeVoprfP384, ones[:49]},
		{TokenTypeVoprfP384, zeros[:48]},
		{TokenTypeVoprfP384, p384.PublicKey()[:48]},
		{TokenTypeVoprfP384, append(p384.PublicKey(), 0)},
		{TokenTypeVoprfP384, ristretto.PublicKey()},
		{TokenTypeVoprfP384, testIssuer(t).PublicKey()},
		{TokenTypeVoprfP384, nil},
		{TokenTypeVoprfRistretto255, ones[:32]},
		{TokenTypeVoprfRistretto255, p384.PublicKey()},
		{TokenTypeVoprfRistretto255, nil},
	} {
		_, err := NewVoprfClient(c.tokenType, c.key)
		wantErr(t, err, ErrInvalidKey)
	}
	_, err = NewClient(p384.PublicKey()) // a VOPRF key is not an RSA key
	wantErr(t, err, ErrInvalidKey)
	_, err = NewVerifier(ristretto.PublicKey())
	wantErr(t, err, ErrInvalidKey)

	// The client: a salt, a blind that is not a scalar, a nonce of the wrong length.
	client, err := NewVoprfClient(TokenTypeVoprfP384, p384.PublicKey())
	mustNoErr(t, err)
	defer client.Close()
	challenge := voprfChallenge(t, TokenTypeVoprfP384)
	nonce := bytes.Repeat([]byte{1}, NonceLen)
	blind := bytes.Repeat([]byte{7}, VoprfP384ScalarLen)
	_, err = client.RequestWithRandomness(challenge, nonce, make([]byte, SaltLen), blind)
	wantErr(t, err, ErrInvalidInput)
	_, err = client.RequestWithRandomness(challenge, nonce, nil, ones[:VoprfP384ScalarLen])
	wantErr(t, err, ErrInvalidInput)
	_, err = client.RequestWithRandomness(challenge, nonce, nil, zeros[:VoprfP384ScalarLen])
	wantErr(t, err, ErrInvalidInput)
	_, err = client.RequestWithRandomness(challenge, nonce, nil, blind[:VoprfP384ScalarLen-1])
	wantErr(t, err, ErrInvalidInput)
	_, err = client.RequestWithRandomness(challenge, nonce[:NonceLen-1], nil, blind)
	wantErr(t, err, ErrInvalidInput)
	_, err = client.Request(challenge[:len(challenge)-1])
	wantErr(t, err, ErrInvalidInput)
	_, err = client.Request(voprfChallenge(t, TokenTypeVoprfRistretto255))
	wantErr(t, err, ErrUnsupportedToken)
	pending, err := client.RequestWithRandomness(challenge, nonce, nil, blind)
	mustNoErr(t, err)
	defer pending.Close()
	again, err := client.RequestWithRandomness(challenge, nonce, nil, blind)
	mustNoErr(t, err)
	defer again.Close()
	if !bytes.Equal(pending.Request(), again.Request()) {
		t.Error("the same nonce and blind give another TokenRequest")
	}
	_, err = pending.Finalize(make([]byte, 10))
	wantErr(t, err, ErrInvalidInput)
	_, err = pending.Finalize(make([]byte, VoprfP384TokenResponseLen))
	wantErr(t, err, ErrVerificationFailed)
	response, err := ristretto.Issue(pending.Request())
	wantErr(t, err, ErrUnprocessableBlindedToken) // a type 1 request at a type 5 issuer
	if response != nil {
		t.Errorf("a response with the error: %x", response)
	}
	stranger, err := GenerateVoprfIssuer(TokenTypeVoprfP384)
	mustNoErr(t, err)
	defer stranger.Close()
	if stranger.TokenKeyID()[31] != p384.TokenKeyID()[31] { // the truncated ids differ (255 times in 256)
		_, err = stranger.Issue(pending.Request()) // names another key
		wantErr(t, err, ErrUnprocessableBlindedToken)
	}
	response, err = p384.Issue(pending.Request())
	mustNoErr(t, err)
	// The response of another key of the same type: its proof does not verify for this key.
	forged := append([]byte(nil), pending.Request()...)
	forged[2] = stranger.TokenKeyID()[31]
	strangerResponse, err := stranger.Issue(forged)
	mustNoErr(t, err)
	_, err = pending.Finalize(strangerResponse)
	wantErr(t, err, ErrVerificationFailed)
	_, err = pending.Finalize(response)
	mustNoErr(t, err)

	// The issuer.
	_, err = p384.Issue([]byte{0, 1, 3})
	wantErr(t, err, ErrUnprocessableBlindedToken)
	notAnElement := append(append([]byte(nil), pending.Request()[:3]...), ones[:VoprfP384PublicKeyLen]...)
	_, err = p384.Issue(notAnElement)
	wantErr(t, err, ErrUnprocessableBlindedToken)
	_, err = p384.IssueBlinded(make([]byte, TokenKeyIDLen), pending.Request())
	wantErr(t, err, ErrUnknownIssuanceKey)
	_, err = p384.IssueBlinded(p384.TokenKeyID()[:31], pending.Request())
	wantErr(t, err, ErrUnknownIssuanceKey)
	_, err = p384.IssueBlinded(p384.TokenKeyID(), pending.Request()[:10])
	wantErr(t, err, ErrUnprocessableBlindedToken)

	// Stores.
	_, err = NewRedeemerFromIssuer(p384, "ftp://nowhere")
	wantErr(t, err, ErrInvalidStoreURL)
	if op(err) != "pp_redeemer_new_from_issuer" {
		t.Errorf("NewRedeemerFromIssuer: %v", err)
	}
	_, err = NewRedeemerFromIssuer(p384, "memory:\x00")
	wantErr(t, err, ErrInvalidStoreURL)
	_, err = NewRedeemerFromIssuer(p384, "redis://")
	wantErr(t, err, ErrInvalidStoreURL)

	// Malformed tokens at a redeemer of the issuer.
	redeemer, err := NewRedeemerFromIssuer(p384, "memory:")
	mustNoErr(t, err)
	defer redeemer.Close()
	token := newVoprfToken(t, p384, challenge)
	wantErr(t, redeemer.Redeem(token[:100], nil), ErrInvalidParams)
	wantErr(t, redeemer.Redeem(append(append([]byte(nil), token...), 0), nil), ErrInvalidParams)
	wantErr(t, redeemer.Redeem(append([]byte{0, 3}, token[2:]...), nil), ErrUnsupportedToken)
	wantErr(t, redeemer.RedeemAuthorization("Bearer abc", nil), ErrInvalidParams)
	mustNoErr(t, redeemer.Redeem(token, challenge))

	// Use after Close; Close twice is fine.
	c2, err := NewVoprfClient(TokenTypeVoprfRistretto255, ristretto.PublicKey())
	mustNoErr(t, err)
	i2, err := NewIssuerFromScalar(TokenTypeVoprfP384, blind)
	mustNoErr(t, err)
	for _, closer := range []interface{ Close() error }{c2, i2, c2, i2} {
		mustNoErr(t, closer.Close())
	}
	_, err = c2.Request(voprfChallenge(t, TokenTypeVoprfRistretto255))
	wantErr(t, err, ErrClosed)
	_, err = i2.Issue(pending.Request())
	wantErr(t, err, ErrClosed)
	_, err = NewRedeemerFromIssuer(i2, "memory:")
	wantErr(t, err, ErrClosed)
	_, err = NewRedeemerFromIssuer(i2, "memory:\x00") // the URL is checked first, as NewRedeemer does
	wantErr(t, err, ErrInvalidStoreURL)
}

// One type 5 token redeemed by many goroutines at once through one redeemer of its issuer:
// exactly one succeeds, every other answers ErrAlreadySpent. Issuance runs concurrently too.
func TestVoprfConcurrentRedeem(t *testing.T) {
	issuer, err := GenerateVoprfIssuer(TokenTypeVoprfRistretto255)
	mustNoErr(t, err)
	defer issuer.Close()
	client, err := NewVoprfClient(issuer.TokenType(), issuer.PublicKey())
	mustNoErr(t, err)
	defer client.Close()
	challenge := voprfChallenge(t, TokenTypeVoprfRistretto255)

	for _, store := range []string{"memory:", "rocksdb:" + filepath.Join(t.TempDir(), "spends")} {
		store := store
		t.Run(store[:strings.IndexByte(store, ':')], func(t *testing.T) {
			redeemer, err := NewRedeemerFromIssuer(issuer, store)
			mustNoErr(t, err)
			defer redeemer.Close()

			const goroutines, tokensPerRound = 32, 4
			// Concurrent issuance: one issuer, one client.
			tokens := make([][]byte, tokensPerRound)
			var wg sync.WaitGroup
			for k := range tokens {
				k := k
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
					if tokens[k], err = pending.Finalize(response); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}

			for k, token := range tokens {
				var accepted, spent int64
				start := make(chan struct{})
				for g := 0; g < goroutines; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						err := redeemer.Redeem(token, challenge)
						switch {
						case err == nil:
							atomic.AddInt64(&accepted, 1)
						case errors.Is(err, ErrAlreadySpent):
							atomic.AddInt64(&spent, 1)
						default:
							t.Error(err)
						}
					}()
				}
				close(start)
				wg.Wait()
				if accepted != 1 || spent != goroutines-1 {
					t.Fatalf("token %d: %d accepted, %d already spent; want 1 and %d", k, accepted, spent, goroutines-1)
				}
			}
		})
	}
}
