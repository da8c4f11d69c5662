// Package ids makes the public identifiers of the service's records: a type
// prefix and 32 lowercase hex digits of randomness, as in the REST contract's
// "upl_4c0a85f67aa74ecb95a9494a96e4a327".
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Prefixes of each record type. The prefix tells the GraphQL node resolver
// which table an id belongs to.
const (
	UserPrefix   = "usr_"
	UploadPrefix = "upl_"
	APIKeyPrefix = "key_"
	// IdentityPrefix names an identity at an OpenID Connect issuer.
	IdentityPrefix = "idn_"
	// WebhookEndpointPrefix names a webhook endpoint.
	WebhookEndpointPrefix = "whe_"
	// MessagePrefix names a webhook delivery: its webhook-id header.
	MessagePrefix = "msg_"
	// JobPrefix names a deletion job.
	JobPrefix = "job_"
	// HoldPrefix names a legal hold.
	HoldPrefix = "hold_"
)

const randomHexLen = 32

// New returns prefix followed by 128 random bits in lowercase hex.
func New(prefix string) string {
	var b [randomHexLen / 2]byte
	_, _ = rand.Read(b[:]) // never fails: it crashes the program instead
	return prefix + hex.EncodeToString(b[:])
}

// NewUser returns a fresh user id.
func NewUser() string { return New(UserPrefix) }

// NewUpload returns a fresh upload id.
func NewUpload() string { return New(UploadPrefix) }

// NewAPIKey returns a fresh API key id (the record's id, not the secret).
func NewAPIKey() string { return New(APIKeyPrefix) }

// NewIdentity returns a new identity id.
func NewIdentity() string { return New(IdentityPrefix) }

// NewWebhookEndpoint returns a fresh webhook endpoint id.
func NewWebhookEndpoint() string { return New(WebhookEndpointPrefix) }

// NewMessage returns a fresh webhook message id.
func NewMessage() string { return New(MessagePrefix) }

// NewJob returns a fresh deletion job id.
func NewJob() string { return New(JobPrefix) }

// NewHold returns a fresh hold id.
func NewHold() string { return New(HoldPrefix) }

// asciiSpace is the whitespace Trim removes: ASCII's, as HTTP and JSON
// write it. Ids are ASCII, so no other character can border one.
const asciiSpace = " \t\n\v\f\r"

// Trim removes the ASCII whitespace around an id as a caller sent it, and
// nothing else: a no-break space (U+00A0) or any other Unicode space stays,
// so that the id is malformed, not taken for the id it borders.
func Trim(id string) string { return strings.Trim(id, asciiSpace) }

// Valid reports whether id is prefix followed by exactly 32 lowercase hex
// digits. Malformed ids never reach the database.
func Valid(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != randomHexLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
