package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/safedelete/uploads/ent/auditevent"
)

// Hash is an event's place in its owner's chain: SHA-256 of the hash
// before it and of the event's fields (Event.Sum).
type Hash [sha256.Size]byte

// String is the hash in lowercase hex, as verify and receipts show it.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// hashOf reads a stored hash; ok is false unless b is one.
func hashOf(b []byte) (h Hash, ok bool) {
	if len(b) != len(h) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// Event is what an event's hash covers: every column of its row but the
// id, which the database assigns as it inserts (so no statement more reads
// it back). The chain's order is Seq, covered, and each event names its
// predecessor by Prev, covered: an event moved, removed or swapped with
// another breaks the chain all the same.
type Event struct {
	Prev      Hash // the owner's event before this one; zero for the first
	Seq       int64
	OwnerID   string
	UploadID  string
	Kind      auditevent.Kind
	Actor     string
	Via       auditevent.Via
	RequestID string
	CreatedAt time.Time // stored to the microsecond (PostgreSQL's precision)
}

// chainV1 names the encoding below; another encoding would be another
// name (and a column saying which an event uses).
const chainV1 = "safedelete/uploads audit chain v1"

// Sum is the event's hash, over the canonical encoding v1: the name
// chainV1, then each field as a 4-byte big-endian length followed by its
// bytes — Prev (32 bytes), Seq (8 bytes, big-endian), OwnerID, UploadID,
// Kind, Actor, Via, RequestID (UTF-8), CreatedAt (8 bytes, microseconds
// since 1970 UTC, big-endian two's complement). A length before every
// field makes the encoding unambiguous: no two events encode alike
// (docs/operations.md, "The audit trail's chain").
func (e Event) Sum() Hash {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	field([]byte(chainV1))
	field(e.Prev[:])
	field(binary.BigEndian.AppendUint64(nil, uint64(e.Seq)))
	for _, s := range []string{e.OwnerID, e.UploadID, string(e.Kind), e.Actor, string(e.Via), e.RequestID} {
		field([]byte(s))
	}
	field(binary.BigEndian.AppendUint64(nil, uint64(e.CreatedAt.UnixMicro())))
	return sha256.Sum256(b)
}
