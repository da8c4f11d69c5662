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

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The sides' names.
const (
	serviceSide  = "service"
	minimalSide  = "minimal"
	sameWorkSide = "same-work"
)

// handwritten is a baseline: the REST contract as a competent engineer
// would write it with nothing but net/http, database/sql and the S3 SDK, on
// the same SQLite settings and the same S3 server as the service. Both
// baselines keep the service's safety shape (the record's deletion and the
// purge note commit together; the object is removed inline before
// answering) and neither has logging, metrics, CORS, a rate limit, a request
// id, last-use tracking or a framing check (httpserver.Listener); a 404 is
// answered from a plain read, before any write lock is taken. Their
// transactions take turns on a pool of one connection (writer), as
// database/sql code for SQLite is commonly written and as the service's take
// turns (internal/database/writers.go), rather than wait for SQLite's lock
// in its busy handler, which sleeps up to 100 ms between tries whatever the
// lock's holder does: otherwise the comparison would measure those sleeps,
// not what the service's features cost. They differ only in what a delete
// writes:
//
//   - the minimal one (minimal.go) does the contract's work and nothing
//     more: one transaction deletes the record and writes the purge note,
//     and a goroutine removes the notes of finished objects in batches;
//   - the same-work one (samework.go) also writes what the service's delete
//     writes: the trash entry and the audit events, in a second transaction
//     after the object is gone.
//
// They handle COMPLETED and FAILED uploads only (the benchmark seeds no
// PENDING ones).
type handwritten struct {
	db *sql.DB // reads
	// writer is the pool of one connection that write transactions take
	// turns on (db itself with -handwritten-busy-wait).
	writer *sql.DB
	s3     *s3.Client
	// lockFirst looks the upload up only inside the write transaction, as
	// the service does, to measure what taking the lock first costs.
	lockFirst bool
	// ownerStmt and lookupStmt are the two reads prepared, as the service
	// runs them (-handwritten-prepared), and lookupTxStmt the lookup
	// prepared on writer (for lockFirst); nil sends their SQL each time.
	ownerStmt, lookupStmt, lookupTxStmt *sql.Stmt
	// sameWork makes it the same-work baseline.
	sameWork bool
	// notes removes the minimal baseline's notes of finished objects.
	notes *noteSweeper
}

// The reads of every request.
const (
	ownerQuery  = "SELECT owner_id FROM api_keys WHERE digest = ? AND revoked_at IS NULL"
	lookupQuery = "SELECT bucket, object_key FROM uploads WHERE id = ? AND owner_id = ?"
)

// prepare makes the handler run its two reads as prepared statements.
func (h *handwritten) prepare(ctx context.Context) (err error) {
	if h.ownerStmt, err = h.db.PrepareContext(ctx, ownerQuery); err != nil {
		return err
	}
	if h.lookupStmt, err = h.db.PrepareContext(ctx, lookupQuery); err != nil {
		return err
	}
	h.lookupTxStmt, err = h.writer.PrepareContext(ctx, lookupQuery)
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
	if h.sameWork {
		err = h.deleteSameWork(ctx, uploadID, ownerID)
	} else {
		err = h.deleteMinimal(ctx, uploadID, ownerID)
	}
	switch {
	case errors.Is(err, errNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{"Upload not found"})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, errorBody{"Failed to delete upload record"})
	default:
		writeJSON(w, http.StatusOK, messageBody{"Upload " + uploadID + " deleted successfully"})
	}
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

// lookup reads where the caller's upload's object is, in tx if it is not
// nil; errNotFound if the caller has no such upload.
func (h *handwritten) lookup(ctx context.Context, tx *sql.Tx, uploadID, ownerID string) (bucket, key string, err error) {
	stmt := h.lookupStmt
	if tx != nil {
		stmt = h.lookupTxStmt
	}
	err = h.queryRow(ctx, tx, stmt, lookupQuery, uploadID, ownerID).Scan(&bucket, &key)
	return bucket, key, notFound(err)
}

// notFound turns "no row" into errNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound
	}
	return err
}

// insertNote writes, in tx, the purge note of an upload's object, due
// (should the inline DeleteObject fail) in ten seconds, and returns its id.
func insertNote(ctx context.Context, tx *sql.Tx, uploadID, bucket, key string, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO object_purges
		(bucket, object_key, multipart_upload_id, upload_id, attempts, next_attempt_at, last_error, created_at)
		VALUES (?, ?, '', ?, 1, ?, '', ?)`, bucket, key, uploadID, now.Add(10*time.Second), now)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// inlineTimeout bounds the work a handler does after the record's
// transaction, which the caller's going away must not cut short.
const inlineTimeout = 5 * time.Second

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
