package receipt_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletionreceipt"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/internal/faultproxy"
	"github.com/safedelete/uploads/internal/receipt"
	"github.com/safedelete/uploads/internal/testenv"
)

const receiptQuery = `query($id: ID!) { deletionReceipt(uploadId: $id) {
	jws keyId uploadId ownerId bucket objectKey versionsRemoved
	deleteRequestedAt deleteRequestedBy deleteRequestedVia objectGoneAt issuedAt auditEventHash } }`

type shownReceipt struct {
	DeletionReceipt *struct {
		Jws, KeyID, UploadID, OwnerID, VersionsRemoved string
		Bucket, ObjectKey                              *string
		DeleteRequestedAt, ObjectGoneAt                time.Time
		DeleteRequestedBy, DeleteRequestedVia          string
	} `json:"deletionReceipt"`
}

// TestReceiptOnlyOnceTheObjectIsGone: an upload deleted while S3 fails has
// no receipt, however the owner asks, until a retry of its purge removes
// the object; then its receipt verifies against the server's published
// keys and names the upload, its owner, where it was, which versions went,
// and who asked for the delete, when and how. Someone else asking for it
// is told NOT_FOUND, as for an upload that never was.
func TestReceiptOnlyOnceTheObjectIsGone(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	ownerID, key := env.NewUser()
	_, intruder := env.NewUser()
	u := env.MustUpload(key, "a.txt", []byte("hello"))

	env.S3.SetMode(faultproxy.Unavailable)
	if res := env.DeleteREST(key, u.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.App.Purger.Flush()
	if !env.ObjectExists(u.ObjectKey) {
		t.Fatal("the object went while S3 failed")
	}
	if got := env.GraphQL(key, receiptQuery, map[string]any{"id": u.ID}); len(got.Errors) == 0 || got.Errors[0].Code() != "NOT_FOUND" {
		t.Fatalf("receipt before the object is gone: %+v %s", got.Errors, got.Data)
	}

	env.S3.SetMode(faultproxy.Pass)
	ctx := context.Background()
	// The retry is due now rather than after its backoff.
	if err := env.Client().ObjectPurge.Update().Where(objectpurge.UploadID(u.ID)).SetNextAttemptAt(time.Now().Add(-time.Second)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, purged, err := env.App.Purger.RunOnce(ctx); err != nil || purged != 1 {
		t.Fatalf("retry: purged %d, %v", purged, err)
	}
	env.App.Purger.Flush()
	if env.ObjectExists(u.ObjectKey) {
		t.Fatal("the object is still there")
	}

	var shown shownReceipt
	got := env.GraphQL(key, receiptQuery, map[string]any{"id": u.ID})
	if len(got.Errors) > 0 {
		t.Fatalf("receipt: %+v", got.Errors)
	}
	if err := got.Decode(&shown); err != nil || shown.DeletionReceipt == nil {
		t.Fatalf("receipt: %v %s", err, got.Data)
	}
	r := shown.DeletionReceipt

	jwks := env.Do(http.MethodGet, receipt.JWKSPath, nil, nil)
	if jwks.Status != http.StatusOK || jwks.Header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %s", jwks.Status, jwks.Header.Get("Content-Type"))
	}
	kid, payload, err := receipt.Verify(r.Jws, []byte(jwks.Body))
	if err != nil {
		t.Fatalf("the receipt does not verify against %s: %v", receipt.JWKSPath, err)
	}
	claims, err := receipt.DecodeClaims(payload)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := env.Client().AuditEvent.Query().Where(auditevent.UploadID(u.ID), auditevent.KindEQ(auditevent.KindDELETED)).Only(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The receipt anchors the owner's audit chain: it names the hash of
	// the event that recorded the upload gone.
	purged, err := env.Client().AuditEvent.Query().Where(auditevent.UploadID(u.ID), auditevent.KindEQ(auditevent.KindPURGED)).Only(ctx)
	if err != nil || len(purged.Hash) == 0 {
		t.Fatalf("the PURGED event: %v, hash %x", err, purged.Hash)
	}
	want := receipt.Claims{
		AuditEventHash: hex.EncodeToString(purged.Hash),
		IssuedAt:       claims.IssuedAt, UploadID: u.ID, OwnerID: ownerID, Bucket: env.Bucket, ObjectKey: u.ObjectKey,
		VersionsRemoved: receipt.VersionsAll, DeleteRequestedAt: deleted.CreatedAt.UTC(), DeleteRequestedBy: deleted.Actor,
		DeleteRequestedVia: "REST", ObjectGoneAt: claims.ObjectGoneAt,
	}
	claims.DeleteRequestedAt = claims.DeleteRequestedAt.UTC()
	if !claims.DeleteRequestedAt.Equal(want.DeleteRequestedAt) {
		t.Errorf("delete requested at %s, want %s", claims.DeleteRequestedAt, want.DeleteRequestedAt)
	}
	claims.DeleteRequestedAt = want.DeleteRequestedAt
	if *claims != want {
		t.Errorf("claims\n%+v\nwant\n%+v", *claims, want)
	}
	if !claims.ObjectGoneAt.After(claims.DeleteRequestedAt) {
		t.Errorf("object gone at %s, before the delete at %s", claims.ObjectGoneAt, claims.DeleteRequestedAt)
	}
	if kid != r.KeyID || r.UploadID != u.ID || r.OwnerID != ownerID || r.Bucket == nil || *r.Bucket != env.Bucket || r.DeleteRequestedVia != "REST" {
		t.Errorf("shown fields disagree with the payload: %+v", r)
	}

	if got := env.GraphQL(intruder, receiptQuery, map[string]any{"id": u.ID}); len(got.Errors) == 0 || got.Errors[0].Code() != "NOT_FOUND" {
		t.Errorf("someone else's receipt: %+v %s", got.Errors, got.Data)
	}
}

// TestReceiptNamesTheDeleteRequest: a receipt tells who asked for the
// delete, through what and when exactly as the DELETED audit event does,
// whether its purge ends right after the delete (the purge note carries
// the request) or later from a purge note written before notes carried it
// (the receipt then reads the event).
func TestReceiptNamesTheDeleteRequest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, testenv.Options{NoPurgeLoop: true})
	_, key := env.NewUser()
	ctx := context.Background()
	jwks := env.Do(http.MethodGet, receipt.JWKSPath, nil, nil).Body
	check := func(uploadID, via string) {
		t.Helper()
		stored, err := env.Client().DeletionReceipt.Query().Where(deletionreceipt.UploadID(uploadID)).Only(ctx)
		if err != nil {
			t.Fatalf("receipt of %s: %v", uploadID, err)
		}
		_, payload, err := receipt.Verify(stored.Jws, []byte(jwks))
		if err != nil {
			t.Fatal(err)
		}
		claims, err := receipt.DecodeClaims(payload)
		if err != nil {
			t.Fatal(err)
		}
		deleted := env.Client().AuditEvent.Query().Where(auditevent.UploadID(uploadID), auditevent.KindEQ(auditevent.KindDELETED)).OnlyX(ctx)
		if !claims.DeleteRequestedAt.Equal(deleted.CreatedAt) || claims.DeleteRequestedBy != deleted.Actor || claims.DeleteRequestedVia != string(deleted.Via) || claims.DeleteRequestedVia != via {
			t.Errorf("%s's receipt: delete requested at %s by %q via %q; the DELETED event: at %s by %q via %q (want via %s)",
				uploadID, claims.DeleteRequestedAt, claims.DeleteRequestedBy, claims.DeleteRequestedVia, deleted.CreatedAt, deleted.Actor, deleted.Via, via)
		}
	}

	inline := env.MustUpload(key, "a.txt", []byte("a"))
	if got := env.GraphQL(key, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": inline.ID}); len(got.Errors) > 0 {
		t.Fatalf("delete: %+v", got.Errors)
	}
	env.App.Purger.Flush()
	check(inline.ID, "GRAPHQL")

	old := env.MustUpload(key, "b.txt", []byte("b"))
	env.S3.SetMode(faultproxy.Unavailable)
	if res := env.DeleteREST(key, old.ID); res.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	env.App.Purger.Flush()
	env.S3.SetMode(faultproxy.Pass)
	// As a note written before notes carried the request (the columns are
	// immutable to Ent), due now.
	if _, err := env.Client().ExecContext(ctx, `UPDATE object_purges SET requested_by = '', requested_via = '', next_attempt_at = $1 WHERE upload_id = $2`,
		time.Now().Add(-time.Second), old.ID); err != nil {
		t.Fatal(err)
	}
	if _, purged, err := env.App.Purger.RunOnce(ctx); err != nil || purged != 1 {
		t.Fatalf("retry: purged %d, %v", purged, err)
	}
	env.App.Purger.Flush()
	check(old.ID, "REST")
}
