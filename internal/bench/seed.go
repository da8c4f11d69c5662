package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
)

// sqliteDSN is the service's DSN for a SQLite file, with synchronous
// overridden when sync is given.
func sqliteDSN(path, sync string) string {
	if sync != "" {
		path += "?_sync=" + sync
	}
	return database.SQLiteDSN(path)
}

// sqliteSettings reads back what a connection of db runs with.
func sqliteSettings(ctx context.Context, db *sql.DB) (string, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var journal string
	var sync, busy, fk int
	for _, p := range []struct {
		pragma string
		into   any
	}{{"journal_mode", &journal}, {"synchronous", &sync}, {"busy_timeout", &busy}, {"foreign_keys", &fk}} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.into); err != nil {
			return "", fmt.Errorf("PRAGMA %s: %w", p.pragma, err)
		}
	}
	syncNames := []string{"OFF", "NORMAL", "FULL", "EXTRA"}
	return fmt.Sprintf("journal_mode=%s synchronous=%s busy_timeout=%d foreign_keys=%d, BEGIN IMMEDIATE",
		journal, syncNames[sync], busy, fk), nil
}

// user is a seeded user, the secret of its one API key and, in the bearer
// scenarios, its access tokens by algorithm.
type user struct {
	id, key string
	tokens  map[string]string
}

// seededUpload is an upload record whose object is in the bucket, and
// the token its delete carries when it has one of its own.
type seededUpload struct {
	id    string
	owner user
	token string
}

// seedUsers creates n users with one API key each, as apikey.Create would.
func seedUsers(ctx context.Context, db *sql.DB, n int) ([]user, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	users := make([]user, n)
	now := time.Now()
	for i := range users {
		secret, prefix, digest := apikey.Generate()
		users[i] = user{id: ids.NewUser(), key: secret}
		if _, err := tx.ExecContext(ctx, "INSERT INTO users (id, created_at, updated_at, email) VALUES (?, ?, ?, ?)",
			users[i].id, now, now, users[i].id+"@bench.invalid"); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO api_keys (id, prefix, digest, created_at, owner_id) VALUES (?, ?, ?, ?, ?)",
			ids.NewAPIKey(), prefix, digest, now, users[i].id); err != nil {
			return nil, err
		}
	}
	return users, tx.Commit()
}

// seedUploads writes n COMPLETED upload records owned in turn by owners and
// puts a small object for each, the way uploadFile names it.
func seedUploads(ctx context.Context, db *sql.DB, s3c *s3.Client, bucket string, owners []user, n int) ([]seededUpload, error) {
	uploads := make([]seededUpload, n)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := time.Now()
	for i := range uploads {
		u := seededUpload{id: ids.NewUpload(), owner: owners[i%len(owners)]}
		uploads[i] = u
		if _, err := tx.ExecContext(ctx, `INSERT INTO uploads
			(id, created_at, updated_at, filename, content_type, size, status, bucket, object_key, multipart_upload_id, owner_id)
			VALUES (?, ?, ?, 'bench.txt', 'text/plain', ?, 'COMPLETED', ?, ?, '', ?)`,
			u.id, now, now, len(objectBody(u)), bucket, objectKey(u), u.owner.id); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return uploads, putObjects(ctx, s3c, bucket, uploads)
}

// objectKey is graph.objectKey's naming: uploads/<user>/<upload>.
func objectKey(u seededUpload) string { return "uploads/" + u.owner.id + "/" + u.id }

func objectBody(u seededUpload) []byte { return []byte("bench object " + u.id + "\n") }

// putObjects stores every upload's object, 16 at a time.
func putObjects(ctx context.Context, s3c *s3.Client, bucket string, uploads []seededUpload) error {
	work := make(chan seededUpload)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for u := range work {
				body := objectBody(u)
				_, err := s3c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(objectKey(u)),
					Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
				})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, u := range uploads {
		work <- u
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("put object: %w", err)
	default:
		return nil
	}
}

// createBucket makes a bucket of the run's own.
func createBucket(ctx context.Context, s3c *s3.Client, bucket string) error {
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// countObjects counts the objects in bucket.
func countObjects(ctx context.Context, s3c *s3.Client, bucket string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		n += len(page.Contents)
	}
	return n, nil
}

// removeBucket empties and deletes a bucket of the run's, on an S3 server
// that outlives it.
func removeBucket(ctx context.Context, s3c *s3.Client, bucket string) error {
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	return err
}
