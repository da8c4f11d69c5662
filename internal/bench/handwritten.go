package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// handwritten is the baseline: the REST contract as a competent engineer
// would write it with nothing but net/http, database/sql and the S3 SDK, on
// the same SQLite settings and the same S3 server as the service. It keeps
// the service's safety shape (the record's deletion and the purge note
// commit together; the object is removed inline before answering, then the
// note) and writes what the service's delete writes with it (the trash
// entry and the "deleted" audit event in the delete's transaction, after a
// read of the owner's webhook endpoints; once the object is gone, the
// note's and the entry's removal and the "purged" event in one more), but
// nothing else: no logging, metrics, CORS, rate limit, request id, last-use
// tracking or framing check (httpserver.Listener), and the 404 is answered
// from a read, before any write lock is taken. It handles COMPLETED and
// FAILED uploads only (the benchmark seeds no PENDING ones).
type handwritten struct {
	db *sql.DB
	s3 *s3.Client
	// lockFirst looks the upload up inside the write transaction, as the
	// service does, to measure what taking the lock first costs.
	lockFirst bool
	// ownerStmt and lookupStmt are the two reads prepared, as the service
	// runs them (-handwritten-prepared); nil sends their SQL each time.
	ownerStmt, lookupStmt *sql.Stmt
}

// The reads of every request.
const (
	ownerQuery  = "SELECT owner_id FROM api_keys WHERE digest = ? AND revoked_at IS NULL"
	lookupQuery = "SELECT bucket, object_key FROM uploads WHERE id = ? AND owner_id = ?"
	// The owner's live webhook endpoints, read before each event is
	// recorded (the service queues a delivery for each).
	endpointsQuery = "SELECT id FROM webhook_endpoints WHERE owner_id = ? AND disabled_at IS NULL"
)

// prepare makes the handler run its two reads as prepared statements.
func (h *handwritten) prepare(ctx context.Context) (err error) {
	if h.ownerStmt, err = h.db.PrepareContext(ctx, ownerQuery); err != nil {
		return err
	}
	h.lookupStmt, err = h.db.PrepareContext(ctx, lookupQuery)
	return err
}

// queryRow runs query, or stmt if it is prepared, in tx if it is not nil.
func (h *handwritten) queryRow(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, query string, args ...any) *sql.Row {
	switch {
	case stmt != nil && tx != nil:
		return tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
	case stmt != nil:
		return stmt.QueryRowContext(ctx, args...)
	case tx != nil:
		return tx.QueryRowContext(ctx, query, args...)
	default:
		return h.db.QueryRowContext(ctx, query, args...)
	}
}

// errNotFound means the caller has no such upload (or a concurrent delete
// removed it first).
var errNotFound = errors.New("upload not found")

func (h *handwritten) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != restPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", http.MethodDelete)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"Method not allowed"})
		return
	}
	ctx := r.Context()
	ownerID, err := h.owner(ctx, strings.TrimSpace(r.Header.Get("x-api-key")))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		writeJSON(w, http.StatusUnauthorized, errorBody{"Unauthorized"})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody{"Failed to delete upload record"})
		return
	}
	uploadID := strings.TrimSpace(r.Header.Get("x-upload-id"))
	if uploadID == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{"Missing Upload-Id header"})
		return
	}
	bucket, key, purgeID, err := h.deleteRecord(ctx, uploadID, ownerID)
	switch {
	case errors.Is(err, errNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{"Upload not found"})
		return
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody{"Failed to delete upload record"})
		return
	}
	if key != "" {
		h.purge(ctx, purgeID, uploadID, ownerID, bucket, key)
	}
	writeJSON(w, http.StatusOK, messageBody{"Upload " + uploadID + " deleted successfully"})
}

// owner returns the owner of the live API key whose secret is given.
func (h *handwritten) owner(ctx context.Context, secret string) (string, error) {
	if secret == "" {
		return "", sql.ErrNoRows
	}
	sum := sha256.Sum256([]byte(secret))
	var ownerID string
	err := h.queryRow(ctx, nil, h.ownerStmt, ownerQuery, hex.EncodeToString(sum[:])).Scan(&ownerID)
	return ownerID, err
}

// deleteRecord deletes the caller's upload and writes its purge note in one
// transaction (BEGIN IMMEDIATE, from the DSN's _txlock), and returns where
// its object is. The upload is looked up with a plain read first, so that a
// 404 never takes SQLite's write lock (unless lockFirst).
func (h *handwritten) deleteRecord(ctx context.Context, uploadID, ownerID string) (bucket, key string, purgeID int64, err error) {
	if !h.lockFirst {
		if err := h.queryRow(ctx, nil, h.lookupStmt, lookupQuery, uploadID, ownerID).Scan(&bucket, &key); err != nil {
			return "", "", 0, notFound(err)
		}
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return "", "", 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if h.lockFirst {
		if err := h.queryRow(ctx, tx, h.lookupStmt, lookupQuery, uploadID, ownerID).Scan(&bucket, &key); err != nil {
			return "", "", 0, notFound(err)
		}
	}
	now := time.Now()
	var filename, contentType, status string
	var size int64
	var createdAt time.Time
	err = tx.QueryRowContext(ctx, `DELETE FROM uploads WHERE id = ? AND owner_id = ?
		RETURNING filename, content_type, size, status, created_at`, uploadID, ownerID).
		Scan(&filename, &contentType, &size, &status, &createdAt)
	if err != nil { // no row: a concurrent delete won
		return "", "", 0, notFound(err)
	}
	if key != "" {
		res, err := tx.ExecContext(ctx, `INSERT INTO object_purges
			(bucket, object_key, multipart_upload_id, upload_id, attempts, next_attempt_at, last_error, created_at)
			VALUES (?, ?, '', ?, 1, ?, '', ?)`, bucket, key, uploadID, now.Add(10*time.Second), now)
		if err != nil {
			return "", "", 0, err
		}
		if purgeID, err = res.LastInsertId(); err != nil {
			return "", "", 0, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deleted_uploads
			(id, owner_id, filename, content_type, size, status, bucket, object_key, multipart_upload_id, created_at, deleted_at, purge_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			uploadID, ownerID, filename, contentType, size, status, bucket, key, createdAt, now, now)
		if err != nil {
			return "", "", 0, err
		}
	}
	if err := recordEvent(ctx, tx, uploadID, ownerID, "DELETED", now); err != nil {
		return "", "", 0, err
	}
	return bucket, key, purgeID, tx.Commit()
}

// recordEvent writes an audit event, after reading the owner's webhook
// endpoints as the service does (the benchmark's users have none).
func recordEvent(ctx context.Context, tx *sql.Tx, uploadID, ownerID, kind string, now time.Time) error {
	rows, err := tx.QueryContext(ctx, endpointsQuery, ownerID)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_events (upload_id, owner_id, kind, actor, via, request_id, created_at)
		VALUES (?, ?, ?, 'key', 'REST', '', ?)`, uploadID, ownerID, kind, now)
	return err
}

// notFound turns "no row" into errNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	return err
}

// purge removes the object with one DeleteObject, then, in one
// transaction, the purge note and the trash entry, recording the "purged"
// event. On failure the note stays (a real service would retry it in the
// background; the benchmark's S3 server does not fail).
func (h *handwritten) purge(ctx context.Context, purgeID int64, uploadID, ownerID, bucket, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := h.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, "DELETE FROM object_purges WHERE id = ?", purgeID); err != nil {
		return
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM deleted_uploads WHERE id = ?", uploadID); err != nil {
		return
	}
	if recordEvent(ctx, tx, uploadID, ownerID, "PURGED", time.Now()) != nil {
		return
	}
	_ = tx.Commit()
}

type errorBody struct {
	Error string `json:"error"`
}

type messageBody struct {
	Message string `json:"message"`
}

// writeJSON writes the contract's compact body, without a trailing newline.
func writeJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
