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

// DeletionJobReceipt is a deletion job's receipt with its payload decoded
// (internal/receipt.JobClaims), as GraphQL shows it.
type DeletionJobReceipt struct {
	Jws            string
	KeyID          string
	JobID          string
	OwnerID        string
	Kind           string
	Status         string
	MatchedCount   int
	DeletedCount   int
	HeldCount      int
	FailedCount    int
	ReceiptCount   int
	ReceiptsDigest string
	StartedAt      *time.Time
	FinishedAt     *time.Time
	CompletedAt    time.Time
	IssuedAt       time.Time
}
