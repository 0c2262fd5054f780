package privacypass

// #include "privacypass.h"
import "C"

import (
	"math"
	"time"
	"unsafe"
)

// directoryKeysGuess is how many keys of one type the first call for a directory makes room
// for; a directory listing more is asked again with the count the library answers.
const directoryKeysGuess = 8

// DirectoryTokenKeys answers the keys of tokenType an RFC 9578 issuer directory (the JSON of
// /.well-known/private-token-issuer-directory) lists, in its order, each as its Token Key
// Encoding (the token-key, decoded): for TokenTypeBlindRSA the RSASSA-PSS SubjectPublicKeyInfo
// (PublicKeyLen bytes, what [NewVerifier] and [NewClient] take), for TokenTypeVoprfP384 and
// TokenTypeVoprfRistretto255 the serialized public element (what [NewVoprfClient] takes), each
// checked to be a valid key of its type. A key listed twice is answered once. A directory
// without keys of that type answers none and no error. Another token type answers
// ErrUnsupportedToken, a malformed directory ErrInvalidInput, a key of that type that is not a
// valid one ErrInvalidKey.
func DirectoryTokenKeys(directory []byte, tokenType uint16) ([][]byte, error) {
	const op = "pp_directory_token_keys"
	keyLen := int(C.pp_token_key_len(C.uint16_t(tokenType)))
	j, jn := inChars(directory)
	out, code := output(directoryKeysGuess*keyLen, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_directory_token_keys(j, jn, C.uint16_t(tokenType), (*C.uint8_t)(o), n, l)
	})
	if code != CodeOK {
		return nil, fail(op, code)
	}
	if keyLen == 0 || len(out)%keyLen != 0 {
		return nil, fail(op, CodeInternal) // not the library's contract: never answered
	}
	keys := make([][]byte, len(out)/keyLen)
	for i := range keys {
		keys[i] = out[i*keyLen : (i+1)*keyLen : (i+1)*keyLen]
	}
	return keys, nil
}

// DirectoryNotBefore answers the not-before of each key [DirectoryTokenKeys] answers for the
// same directory and tokenType, in the same order: the time from which the issuer says the key
// is in use, to the second, or the zero time.Time (IsZero) for a key listed without one (or with
// "not-before": 0). A host taking its keys from a directory offers in its challenges the first
// key whose not-before has passed (RFC 9578 §4): the issuer lists the key it will issue with
// next, with its start, before the one issuing now. It fails where DirectoryTokenKeys fails,
// with the same errors.
func DirectoryNotBefore(directory []byte, tokenType uint16) ([]time.Time, error) {
	const op = "pp_directory_not_before"
	j, jn := inChars(directory)
	out, code := outputOf[C.uint64_t](directoryKeysGuess, func(o unsafe.Pointer, n C.size_t, l *C.size_t) C.enum_pp_result {
		return C.pp_directory_not_before(j, jn, C.uint16_t(tokenType), (*C.uint64_t)(o), n, l)
	})
	if code != CodeOK {
		return nil, fail(op, code)
	}
	starts := make([]time.Time, len(out))
	for i := range starts {
		switch s := uint64(out[i]); {
		case s == 0:
			// the zero time.Time: no not-before
		case s > math.MaxInt64:
			starts[i] = time.Unix(math.MaxInt64, 0) // beyond any date: never
		default:
			starts[i] = time.Unix(int64(s), 0)
		}
	}
	return starts, nil
}
