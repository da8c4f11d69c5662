package model

import "time"

// DeletionReceipt is an upload's deletion receipt with its payload decoded
// (internal/receipt.Claims), as GraphQL shows it.
type DeletionReceipt struct {
	Jws                string
	KeyID              string
	UploadID           string
	OwnerID            string
	Bucket             *string
	ObjectKey          *string
	VersionsRemoved    string
	DeleteRequestedAt  time.Time
	DeleteRequestedBy  string
	DeleteRequestedVia string
	ObjectGoneAt       time.Time
	IssuedAt           time.Time
	AuditEventHash     *string
}
