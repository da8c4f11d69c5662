package main

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// endpointsQuery reads the owner's live webhook endpoints, before each
// event is recorded (the service queues a delivery for each).
const endpointsQuery = "SELECT id FROM webhook_endpoints WHERE owner_id = ? AND disabled_at IS NULL"

// deleteSameWork is the same-work baseline's delete: what the service's
// delete writes, by hand. In the record's transaction, the purge note, the
// trash entry and the "deleted" audit event (after a read of the owner's
// webhook endpoints); then the object is removed inline and, in one more
// transaction, the note and the entry with it, recording the "purged"
// event.
func (h *handwritten) deleteSameWork(ctx context.Context, uploadID, ownerID string) error {
	bucket, key, purgeID, err := h.deleteRecord(ctx, uploadID, ownerID)
	if err != nil {
		return err
	}
	if key != "" {
		h.purge(ctx, purgeID, uploadID, ownerID, bucket, key)
	}
	return nil
}

// deleteRecord deletes the caller's upload and writes its purge note, trash
// entry and event in one transaction (BEGIN IMMEDIATE, from the DSN's
// _txlock), and returns where its object is. The upload is looked up with
// a plain read first, so that a 404 never takes SQLite's write lock (unless
// lockFirst).
func (h *handwritten) deleteRecord(ctx context.Context, uploadID, ownerID string) (bucket, key string, purgeID int64, err error) {
	if !h.lockFirst {
		if bucket, key, err = h.lookup(ctx, nil, uploadID, ownerID); err != nil {
			return "", "", 0, err
		}
	}
	tx, err := h.writer.BeginTx(ctx, nil)
	if err != nil {
		return "", "", 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if h.lockFirst {
		if bucket, key, err = h.lookup(ctx, tx, uploadID, ownerID); err != nil {
			return "", "", 0, err
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
		if purgeID, err = insertNote(ctx, tx, uploadID, bucket, key, now); err != nil {
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

// purge removes the object with one DeleteObject, then, in one
// transaction, the purge note and the trash entry, recording the "purged"
// event. On failure the note stays (a real service would retry it in the
// background; the benchmark's S3 server does not fail).
func (h *handwritten) purge(ctx context.Context, purgeID int64, uploadID, ownerID, bucket, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inlineTimeout)
	defer cancel()
	if _, err := h.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return
	}
	tx, err := h.writer.BeginTx(ctx, nil)
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
