package main

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// deleteMinimal is the minimal baseline's delete: the contract's work and
// nothing more. A plain read (a 404 takes no write lock, unless
// lockFirst), one transaction that deletes the record and writes the purge
// note, the object removed inline, and the note handed to h.notes, off the
// request path.
func (h *handwritten) deleteMinimal(ctx context.Context, uploadID, ownerID string) error {
	if !h.lockFirst {
		if _, _, err := h.lookup(ctx, nil, uploadID, ownerID); err != nil {
			return err
		}
	}
	bucket, key, noteID, err := h.deleteWithNote(ctx, uploadID, ownerID)
	if err != nil || key == "" {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inlineTimeout)
	defer cancel()
	if _, err := h.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return nil // the record is gone; the note stays for a retry (the benchmark's S3 server does not fail)
	}
	h.notes.add(noteID)
	return nil
}

// deleteWithNote deletes the caller's upload and writes its purge note in
// one transaction (BEGIN IMMEDIATE, from the DSN's _txlock), and returns
// where its object is.
func (h *handwritten) deleteWithNote(ctx context.Context, uploadID, ownerID string) (bucket, key string, noteID int64, err error) {
	tx, err := h.writer.BeginTx(ctx, nil)
	if err != nil {
		return "", "", 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	err = tx.QueryRowContext(ctx, "DELETE FROM uploads WHERE id = ? AND owner_id = ? RETURNING bucket, object_key",
		uploadID, ownerID).Scan(&bucket, &key)
	if err != nil { // no row: no such upload, or a concurrent delete won
		return "", "", 0, notFound(err)
	}
	if key != "" {
		if noteID, err = insertNote(ctx, tx, uploadID, bucket, key, time.Now()); err != nil {
			return "", "", 0, err
		}
	}
	return bucket, key, noteID, tx.Commit()
}

// noteBatch is how many notes one statement removes at most.
const noteBatch = 500

// noteSweeper removes the purge notes of objects already gone, many in one
// statement, from one goroutine, as the service's purger does: nobody waits
// for them, and under load the database commits once per batch, not once
// per delete. A note it fails to remove would only make a real service run
// its idempotent purge again (the benchmark's checks would show it).
type noteSweeper struct {
	db      *sql.DB
	ids     chan int64
	pending sync.WaitGroup // notes added and not yet swept
}

// newNoteSweeper starts sweeping db's notes; close stops it.
func newNoteSweeper(db *sql.DB) *noteSweeper {
	s := &noteSweeper{db: db, ids: make(chan int64, 4*noteBatch)}
	go s.run()
	return s
}

// add hands over the note of an object that is gone.
func (s *noteSweeper) add(id int64) {
	s.pending.Add(1)
	s.ids <- id
}

// run removes the notes handed over, those that arrived while the last
// statement ran in one more.
func (s *noteSweeper) run() {
	for id := range s.ids {
		batch := []any{id}
	collect:
		for len(batch) < noteBatch {
			select {
			case id, ok := <-s.ids:
				if !ok {
					break collect
				}
				batch = append(batch, id)
			default:
				break collect
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = s.db.ExecContext(ctx, "DELETE FROM object_purges WHERE id IN (?"+strings.Repeat(", ?", len(batch)-1)+")", batch...)
		cancel()
		s.pending.Add(-len(batch))
	}
}

// wait returns once every note handed over is swept (or failed to be).
func (s *noteSweeper) wait() { s.pending.Wait() }

// close stops the sweeper, once no handler runs.
func (s *noteSweeper) close() { close(s.ids) }
