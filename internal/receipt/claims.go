package receipt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Claims are the payload of an upload's deletion receipt.
type Claims struct {
	// IssuedAt is when the receipt was signed (seconds since the epoch, as
	// JWT's iat).
	IssuedAt  int64  `json:"iat"`
	UploadID  string `json:"upload_id"`
	OwnerID   string `json:"owner_id"`
	Bucket    string `json:"bucket,omitempty"`
	ObjectKey string `json:"object_key,omitempty"`
	// VersionsRemoved says which versions of the object were removed. The
	// purger removes every version and delete marker listed under the key
	// without keeping their ids, so it is a word, not a list: VersionsAll,
	// VersionsCurrent (S3_DELETE_MARKER_ONLY), or VersionsNone (the upload
	// never stored an object).
	VersionsRemoved string `json:"versions_removed"`
	// DeleteRequestedAt and DeleteRequestedBy are the upload's DELETED audit
	// event's time and actor (an API key's id, a token's identity, or cli,
	// janitor); DeleteRequestedVia is how the actor came (REST, GRAPHQL,
	// CLI, JANITOR). When that event is no longer kept, the time is the
	// purge's and the actor "unknown".
	DeleteRequestedAt  time.Time `json:"delete_requested_at"`
	DeleteRequestedBy  string    `json:"delete_requested_by"`
	DeleteRequestedVia string    `json:"delete_requested_via"`
	// ObjectGoneAt is when the service recorded the object removed (the
	// removal itself came just before); for an upload with no object, when
	// its record was deleted.
	ObjectGoneAt time.Time `json:"object_gone_at"`
	// AuditEventHash is the hash of the audit event that recorded the
	// upload gone (its PURGED event; DELETED for an upload with no object),
	// anchoring the receipt in the audit trail's hash chain. Empty where
	// the trail has no hashes.
	AuditEventHash string `json:"audit_event_hash,omitempty"`
}

// What VersionsRemoved says.
const (
	VersionsAll     = "all"
	VersionsCurrent = "current"
	VersionsNone    = "none"
)

// Hash returns the hex SHA-256 of a receipt's compact JWS: how a user
// erasure's receipt names each upload receipt.
func Hash(jws string) string {
	sum := sha256.Sum256([]byte(jws))
	return hex.EncodeToString(sum[:])
}

// ErrInvalid wraps every reason a receipt does not verify.
var ErrInvalid = errors.New("invalid receipt")

// Verify checks a receipt's signature against the public keys of jwks (a
// JSON Web Key Set document) and returns its header's kid and its claims.
// Every refusal wraps ErrInvalid and says why.
func Verify(compact string, jwks []byte) (kid string, raw []byte, err error) {
	return verify(compact, jwks, Type)
}

// VerifyJob is Verify for a deletion job's receipt (typ JobType); its
// payload decodes with DecodeJobClaims.
func VerifyJob(compact string, jwks []byte) (kid string, raw []byte, err error) {
	return verify(compact, jwks, JobType)
}

// TypeOf returns the "typ" header of a compact JWS, unverified (Type or
// JobType for a receipt), to choose between Verify and VerifyJob; "" when
// it is not a compact EdDSA JWS.
func TypeOf(compact string) string {
	object, err := parse(compact)
	if err != nil {
		return ""
	}
	typ, _ := object.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string)
	return typ
}

func verify(compact string, jwks []byte, wantType string) (kid string, raw []byte, err error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return "", nil, fmt.Errorf("read the public keys: not a JSON Web Key Set: %w", err)
	}
	object, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "", nil, fmt.Errorf("%w: not a compact EdDSA JWS: %v", ErrInvalid, err)
	}
	if len(object.Signatures) != 1 {
		return "", nil, fmt.Errorf("%w: %d signatures, want 1", ErrInvalid, len(object.Signatures))
	}
	header := object.Signatures[0].Header
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); typ != wantType {
		return header.KeyID, nil, fmt.Errorf("%w: type %q, want %q", ErrInvalid, typ, wantType)
	}
	keys := set.Key(header.KeyID)
	if len(keys) == 0 {
		return header.KeyID, nil, fmt.Errorf("%w: no public key with kid %q", ErrInvalid, header.KeyID)
	}
	payload, err := object.Verify(keys[0])
	if err != nil {
		return header.KeyID, nil, fmt.Errorf("%w: the signature does not match (kid %q)", ErrInvalid, header.KeyID)
	}
	return header.KeyID, payload, nil
}

// Decode returns the kid and the claims of a receipt without checking its
// signature: for showing a receipt the service itself stored.
func Decode(compact string) (kid string, claims *Claims, err error) {
	object, err := parse(compact)
	if err != nil {
		return "", nil, err
	}
	claims, err = decodeClaims(object.UnsafePayloadWithoutVerification())
	return object.Signatures[0].Header.KeyID, claims, err
}

// parse parses a compact EdDSA JWS with one signature, unverified.
func parse(compact string) (*jose.JSONWebSignature, error) {
	object, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(object.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not a compact EdDSA JWS", ErrInvalid)
	}
	return object, nil
}

// DecodeClaims parses a verified payload.
func DecodeClaims(payload []byte) (*Claims, error) { return decodeClaims(payload) }

func decodeClaims(payload []byte) (*Claims, error) {
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: the payload is not the claims of a deletion receipt: %v", ErrInvalid, err)
	}
	return &c, nil
}
