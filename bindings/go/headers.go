package privacypass

// #include "privacypass.h"
import "C"

import (
	"strings"
	"time"
	"unsafe"
)

// Challenge is a TokenChallenge (RFC 9577 §2.1) before encoding.
type Challenge struct {
	// TokenType is the token type: TokenTypeBlindRSA, TokenTypeVoprfP384 or
	// TokenTypeVoprfRistretto255. The zero value stands for TokenTypeBlindRSA (2):
	// Challenge{TokenType: 0} encodes exactly as Challenge{TokenType: 2}. (Type 0x0000 is
	// reserved by RFC 9577 and cannot be encoded.) Another type is encoded as given; a Client
	// answers ErrUnsupportedToken for a type other than its key's.
	TokenType uint16
	// IssuerName is the issuer's name, 1 to 65535 bytes, e.g. "issuer.example".
	IssuerName string
	// RedemptionContext is empty, or exactly RedemptionContextLen (32) bytes, e.g. random to
	// make tokens for this challenge only.
	RedemptionContext []byte
	// OriginInfo is empty (any origin) or the origin names the tokens are for.
	OriginInfo []string
}

// Encode answers the encoded TokenChallenge: what [Client.Request], [Verifier.Verify] and
// [WWWAuthenticate] take. A TokenType of 0 is encoded as TokenTypeBlindRSA. A length out of
// range answers ErrInvalidInput.
func (c Challenge) Encode() ([]byte, error) {
	tokenType := c.TokenType
	if tokenType == 0 { // the zero value: type 2
		tokenType = TokenTypeBlindRSA
	}
	name, nameLen := inChars([]byte(c.IssuerName))
	context, contextLen := inBytes(c.RedemptionContext)
	origins, originsLen := inChars([]byte(strings.Join(c.OriginInfo, ",")))
	out, code := output(64+len(c.IssuerName)+len(c.RedemptionContext)+originsLenInt(c.OriginInfo),
		func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
			return C.pp_challenge_encode(C.uint16_t(tokenType), name, nameLen, context, contextLen,
				origins, originsLen, (*C.uint8_t)(o), n, l)
		})
	return out, fail("pp_challenge_encode", code)
}

func originsLenInt(origins []string) int {
	n := 0
	for _, o := range origins {
		n += len(o) + 1
	}
	return n
}

// WWWAuthenticate answers one PrivateToken challenge as a WWW-Authenticate header value:
// PrivateToken challenge="<base64url>", token-key="<base64url>". challenge is an encoded
// TokenChallenge, tokenKey the issuer's public key ([Issuer.PublicKey] or the directory's
// token-key, decoded). Several challenges share one header when joined with ", ".
func WWWAuthenticate(challenge, tokenKey []byte) (string, error) {
	return wwwAuthenticate(challenge, tokenKey, nil)
}

// WWWAuthenticateMaxAge is WWWAuthenticate with a max-age parameter: how long the challenge may
// be cached, in whole seconds. A fraction of a second is rounded up (500ms and 1s both give
// max-age="1"), never down to a max-age of 0, which would tell clients to discard the challenge
// at once; only a maxAge of exactly 0 gives max-age="0". A negative maxAge answers
// ErrInvalidInput.
func WWWAuthenticateMaxAge(challenge, tokenKey []byte, maxAge time.Duration) (string, error) {
	if maxAge < 0 {
		return "", fail("pp_challenge_www_authenticate", CodeInvalidInput)
	}
	seconds := C.uint64_t(maxAge / time.Second)
	if maxAge%time.Second != 0 {
		seconds++
	}
	return wwwAuthenticate(challenge, tokenKey, &seconds)
}

func wwwAuthenticate(challenge, tokenKey []byte, maxAge *C.uint64_t) (string, error) {
	ch, chn := inBytes(challenge)
	k, kn := inBytes(tokenKey)
	out, code := output(2*(len(challenge)+len(tokenKey))+96, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_challenge_www_authenticate(ch, chn, k, kn, maxAge, (*C.char)(o), n, l)
	})
	return string(out), fail("pp_challenge_www_authenticate", code)
}

// EncodeAuthorization answers the Authorization header value for an encoded Token:
// PrivateToken token="<base64url>". A malformed token (truncated, too long, trailing bytes)
// answers ErrInvalidParams, a token of another type than 1, 2 or 5 ErrUnsupportedToken.
func EncodeAuthorization(token []byte) (string, error) {
	t, tn := inBytes(token)
	out, code := output(2*len(token)+32, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_authorization_encode(t, tn, (*C.char)(o), n, l)
	})
	return string(out), fail("pp_authorization_encode", code)
}

// ParseAuthorization reads the encoded Token out of an Authorization header value (PrivateToken
// token=..., quoted or not, padded or not) without verifying it. Anything but exactly one
// PrivateToken credential with one base64url token parameter answers ErrInvalidParams.
func ParseAuthorization(authorization string) ([]byte, error) {
	a, an := inChars([]byte(authorization))
	out, code := output(TokenLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_authorization_parse(a, an, (*C.uint8_t)(o), n, l)
	})
	return out, fail("pp_authorization_parse", code)
}
