// Package idempotency makes a retried request safe: a caller that sends
// the same Idempotency-Key with the same request gets the first request's
// answer back, byte for byte, instead of running it again
// (draft-ietf-httpapi-idempotency-key-header, and Stripe's practice).
//
// A request with a key takes it before it runs (Store.Begin: a row, leased
// to this instance and renewed while the request runs). Each effect the
// request has is marked on the row in the effect's own transaction
// (Record, Append), so a retry after a crash between the effect's commit
// and the answer's storage replays the effect instead of doing it again.
// Once the answer is final (Final), it is stored on the row (Claim.Finish),
// sealed: an answer may carry a webhook signing secret.
package idempotency

import (
	"errors"
	"net/http"
	"strings"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from the store.
const ReplayedHeader = "Idempotent-Replayed"

// MaxKeyLength bounds a key's length.
const MaxKeyLength = 255

// ErrInvalidKey is a header that is not one key of 1 to MaxKeyLength
// printable ASCII characters.
var ErrInvalidKey = errors.New("The Idempotency-Key header must be 1 to 255 printable ASCII characters, bare or as a quoted string")

// KeyFrom returns the request's Idempotency-Key, and whether it sent one.
// The header may be a Structured Field string ("…", as the IETF draft has
// it) or the bare key (as Stripe's callers send it); both name the same
// key. Anything else (two headers, an empty key, a character outside
// printable ASCII, a malformed quoted string) is ErrInvalidKey.
func KeyFrom(h http.Header) (key string, sent bool, err error) {
	values := h.Values(Header)
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, ErrInvalidKey
	}
	v := strings.Trim(values[0], " \t")
	if strings.HasPrefix(v, `"`) {
		key, ok := unquote(v)
		if !ok {
			return "", true, ErrInvalidKey
		}
		v = key
	}
	if len(v) == 0 || len(v) > MaxKeyLength {
		return "", true, ErrInvalidKey
	}
	for i := range len(v) {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", true, ErrInvalidKey
		}
	}
	return v, true, nil
}

// unquote decodes a Structured Field string (RFC 8941 §3.3.3): a quoted
// run of printable ASCII in which only \" and \\ are escapes. Nothing may
// follow the closing quote.
func unquote(v string) (string, bool) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			i++
			if i == len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", false
			}
			b.WriteByte(v[i])
		case '"':
			return b.String(), i == len(v)-1
		default:
			b.WriteByte(c)
		}
	}
	return "", false // no closing quote
}
