// Package holds places and releases legal holds: while a hold is active
// (not released, and its until, if any, still ahead) no path deletes what
// it covers — one upload, or every upload of a user, present and future.
//
// The deletes never read the holds table. Each hold placed or released
// rewrites held_until on the rows it covers (the upload; for a user hold,
// the user and every upload and trash entry of theirs) as the latest end
// of the active holds covering them, and the one DELETE of the delete core
// refuses a row whose held_until, or whose owner's, is ahead. So the hot
// path pays nothing when no hold exists (a column of the row it deletes
// anyway), and a hold and a delete of one upload conflict on the upload's
// row: on PostgreSQL under READ COMMITTED, whichever locks it second waits,
// then sees the other's outcome (the DELETE re-checks its WHERE on the
// held row and skips it; the hold's UPDATE finds the row gone and the hold
// is refused). A user hold first locks the user's row FOR UPDATE, which
// waits for every insert of an upload of theirs in flight (an insert's
// foreign key check locks the user's row FOR KEY SHARE); an upload inserted
// later commits after the hold, so every DELETE that can see it also sees
// the user's held_until.
//
// Placing and releasing a hold also notes, in its transaction, the objects
// it covers for internal/objectlock, which mirrors the holds to the
// bucket's S3 legal holds where the bucket has Object Lock.
package holds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/deletedupload"
	"github.com/safedelete/uploads/ent/hold"
	"github.com/safedelete/uploads/ent/objectpurge"
	"github.com/safedelete/uploads/ent/predicate"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/change"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/objectlock"
)

// Forever is the held_until of a hold without an until: later than any
// real date, so that one comparison serves both kinds.
var Forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Errors with a public message.
var (
	// ErrNotFound is a hold, upload or user that does not exist or is not
	// the caller's (or an upload already being purged): the cases look the
	// same.
	ErrNotFound = errors.New("not found")
	// ErrReleased is a release of a hold released before.
	ErrReleased = errors.New("hold already released")
)

// InvalidError is a bad input to Place: nothing was changed.
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

// Spec says what to hold: an upload or a user (exactly one), why, who
// asks, and until when (zero: until released).
type Spec struct {
	UploadID string
	UserID   string
	Reason   string
	Until    time.Time
	// Actor places it: named as placed_by, and in the audit trail.
	Actor audit.Actor
	// OwnerID, when set, restricts the upload to that owner's (a caller
	// holding their own); someone else's is ErrNotFound.
	OwnerID string
}

// MaxReasonLength bounds a hold's reason.
const MaxReasonLength = 1000

func (s *Spec) check(now time.Time) error {
	s.Reason = strings.TrimSpace(s.Reason)
	switch {
	case (s.UploadID == "") == (s.UserID == ""):
		return &InvalidError{"name exactly one of an upload and a user to hold"}
	case s.UploadID != "" && !ids.Valid(ids.UploadPrefix, s.UploadID):
		return ErrNotFound
	case s.UserID != "" && !ids.Valid(ids.UserPrefix, s.UserID):
		return ErrNotFound
	case s.Reason == "":
		return &InvalidError{"a hold needs a reason"}
	case len(s.Reason) > MaxReasonLength:
		return &InvalidError{fmt.Sprintf("a hold's reason is at most %d bytes", MaxReasonLength)}
	case !s.Until.IsZero() && !s.Until.After(now):
		return &InvalidError{"a hold's until must be in the future"}
	case s.Actor.Name == "":
		return &InvalidError{"a hold needs who placed it"}
	}
	return nil
}

// Place places a hold and returns it. inTx, if not nil, runs last in the
// hold's transaction (the audit and webhook events commit with it).
func Place(ctx context.Context, client *ent.Client, spec Spec, inTx func(ctx context.Context, tx *ent.Tx, h *ent.Hold) error) (*ent.Hold, error) {
	now := time.Now().UTC()
	if err := spec.check(now); err != nil {
		return nil, err
	}
	var placed *ent.Hold
	err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		userID := spec.UserID
		if spec.UploadID != "" {
			owner, err := ownerOf(ctx, tx, spec.UploadID, now)
			if err != nil {
				return err
			}
			if spec.OwnerID != "" && owner != spec.OwnerID {
				return ErrNotFound
			}
			userID = owner
		} else if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		create := tx.Hold.Create().
			SetUserID(userID).
			SetReason(spec.Reason).
			SetPlacedBy(spec.Actor.Name).
			SetCreatedAt(now)
		if spec.UploadID != "" {
			create.SetUploadID(spec.UploadID)
		}
		if !spec.Until.IsZero() {
			create.SetUntil(spec.Until.UTC())
		}
		var err error
		if placed, err = create.Save(ctx); err != nil {
			return fmt.Errorf("place hold: %w", err)
		}
		covered, err := refresh(ctx, tx, userID, spec.UploadID, now)
		if err != nil {
			return err
		}
		if spec.UploadID != "" && covered == 0 {
			// Deleted (and purged, or being purged) since it was read:
			// the delete won.
			return ErrNotFound
		}
		if err := objectlock.Enqueue(ctx, tx, userID, spec.UploadID); err != nil {
			return err
		}
		if err := record(ctx, tx, spec.Actor, audit.HoldPlaced, placed); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(ctx, tx, placed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return placed, nil
}

// ownerOf returns the owner of an upload, whether stored or in the trash.
func ownerOf(ctx context.Context, tx *ent.Tx, uploadID string, now time.Time) (string, error) {
	u, err := tx.Upload.Query().Where(upload.ID(uploadID)).Select(upload.FieldOwnerID).Only(ctx)
	if err == nil {
		return u.OwnerID, nil
	}
	if !ent.IsNotFound(err) {
		return "", fmt.Errorf("find upload: %w", err)
	}
	d, err := tx.DeletedUpload.Query().
		Where(deletedupload.ID(uploadID), inTrash(now)).
		Select(deletedupload.FieldOwnerID).
		Only(ctx)
	if ent.IsNotFound(err) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find upload: %w", err)
	}
	return d.OwnerID, nil
}

// inTrash matches the trash entries still restorable: in their window, or
// kept past it by a hold.
func inTrash(now time.Time) predicate.DeletedUpload {
	return deletedupload.Or(deletedupload.PurgeAtGT(now), deletedupload.HeldUntilGT(now.UTC()))
}

// TrashNotHeld matches the trash entries no hold keeps at now.
func TrashNotHeld(now time.Time) predicate.DeletedUpload {
	return deletedupload.Or(deletedupload.HeldUntilIsNil(), deletedupload.HeldUntilLTE(now.UTC()))
}

// InTrash is inTrash for the trash's readers (restore, viewer.deletedUploads).
func InTrash(now time.Time) predicate.DeletedUpload { return inTrash(now) }

// lockUser locks the user's row against the inserts of their uploads (see
// the package comment); on SQLite the transaction's write lock does.
func lockUser(ctx context.Context, tx *ent.Tx, userID string) error {
	query := "SELECT id FROM users WHERE id = $1"
	if database.Dialect(tx.Client()) == dialect.Postgres {
		query += " FOR UPDATE"
	}
	rows, err := tx.QueryContext(ctx, query, userID)
	if err != nil {
		return fmt.Errorf("lock user: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		return ErrNotFound
	}
	return nil
}

// Release releases a hold. ownerID, when set, restricts it to that user's
// holds. inTx, if not nil, runs last in its transaction.
func Release(ctx context.Context, client *ent.Client, holdID string, actor audit.Actor, ownerID string,
	inTx func(ctx context.Context, tx *ent.Tx, h *ent.Hold) error,
) (*ent.Hold, error) {
	if !ids.Valid(ids.HoldPrefix, holdID) {
		return nil, ErrNotFound
	}
	var released *ent.Hold
	err := database.WithTx(ctx, client, func(tx *ent.Tx) error {
		now := time.Now().UTC()
		q := tx.Hold.Query().Where(hold.ID(holdID))
		if ownerID != "" {
			q.Where(hold.UserID(ownerID))
		}
		h, err := q.Only(ctx)
		if ent.IsNotFound(err) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find hold: %w", err)
		}
		if h.UploadID == nil {
			if err := lockUser(ctx, tx, h.UserID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		n, err := tx.Hold.Update().
			Where(hold.ID(holdID), hold.ReleasedAtIsNil()).
			SetReleasedAt(now).
			SetReleasedBy(actor.Name).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("release hold: %w", err)
		}
		if n == 0 {
			return ErrReleased
		}
		uploadID := ""
		if h.UploadID != nil {
			uploadID = *h.UploadID
		}
		if _, err := refresh(ctx, tx, h.UserID, uploadID, now); err != nil {
			return err
		}
		if err := objectlock.Enqueue(ctx, tx, h.UserID, uploadID); err != nil {
			return err
		}
		if released, err = tx.Hold.Get(ctx, holdID); err != nil {
			return fmt.Errorf("read hold: %w", err)
		}
		if err := record(ctx, tx, actor, audit.HoldReleased, released); err != nil {
			return err
		}
		if inTx != nil {
			return inTx(ctx, tx, released)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return released, nil
}

// record writes, in tx, the audit event of a hold on an upload, queued for
// its owner's webhook endpoints (internal/change). A hold on a user is
// recorded by its own row only: an event for each of their uploads would
// make placing it as costly as deleting them.
func record(ctx context.Context, tx *ent.Tx, actor audit.Actor, kind auditevent.Kind, h *ent.Hold) error {
	if h.UploadID == nil {
		return nil
	}
	var subject audit.Subject
	if u, err := tx.Upload.Query().Where(upload.ID(*h.UploadID)).Only(ctx); err == nil {
		subject = audit.Of(u)
	} else if !ent.IsNotFound(err) {
		return fmt.Errorf("read held upload: %w", err)
	} else if d, err := tx.DeletedUpload.Get(ctx, *h.UploadID); err == nil {
		subject = audit.OfDeleted(d)
	} else if ent.IsNotFound(err) {
		return nil // gone since: its own events told of that
	} else {
		return fmt.Errorf("read held upload: %w", err)
	}
	return change.Record(ctx, tx, actor, kind, change.MayHave, subject)
}

// Active reports whether a hold is in force at now.
func Active(h *ent.Hold, now time.Time) bool {
	return h.ReleasedAt == nil && (h.Until == nil || h.Until.After(now))
}

// ActiveOf returns the holds in force on the user or any of their uploads,
// oldest first.
func ActiveOf(ctx context.Context, client *ent.Client, userID string) ([]*ent.Hold, error) {
	now := time.Now()
	all, err := client.Hold.Query().
		Where(hold.UserID(userID), hold.ReleasedAtIsNil(), hold.Or(hold.UntilIsNil(), hold.UntilGT(now))).
		Order(ent.Asc(hold.FieldCreatedAt), ent.Asc(hold.FieldID)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return all, nil
}

// NotHeld matches the uploads no active hold keeps at now: what the
// deletes that pick their own set (a filter, an erasure) pick from. The
// delete core's DELETE checks the same on each row it deletes.
func NotHeld(now time.Time) predicate.Upload {
	now = now.UTC() // held_until is written in UTC; SQLite compares the text
	return upload.And(
		upload.Or(upload.HeldUntilIsNil(), upload.HeldUntilLTE(now)),
		upload.Not(upload.HasOwnerWith(user.HeldUntilGT(now))),
	)
}

// Held matches the uploads an active hold keeps at now.
func Held(now time.Time) predicate.Upload {
	return upload.Not(NotHeld(now))
}

// latestEnd is the latest end of the holds covering a row of table (an
// upload or a trash entry, whose owner is owner_id): a hold of the row's
// upload, or of its owner. Released holds do not count; lapsed ones give a
// time past, which holds nothing.
func latestEnd(table string) string {
	return `(SELECT MAX(COALESCE(h.until, $1)) FROM holds h WHERE h.released_at IS NULL AND h.user_id = ` +
		table + `.owner_id AND (h.upload_id IS NULL OR h.upload_id = ` + table + `.id))`
}

// refresh rewrites, in tx, held_until on the rows the holds of userID (of
// its upload uploadID only, when given) cover, from the holds as they are
// now in tx, and makes the purges of held trash entries wait as long. It
// returns how many uploads and trash entries it covered; an entry whose
// purge a purger already claimed is going, and not counted.
func refresh(ctx context.Context, tx *ent.Tx, userID, uploadID string, now time.Time) (int, error) {
	where, arg := " WHERE owner_id = $2", userID
	if uploadID != "" {
		where, arg = " WHERE id = $2", uploadID
	} else {
		_, err := tx.ExecContext(ctx, `UPDATE users SET held_until = (SELECT MAX(COALESCE(h.until, $1)) FROM holds h
			WHERE h.released_at IS NULL AND h.user_id = users.id AND h.upload_id IS NULL) WHERE id = $2`, Forever, userID)
		if err != nil {
			return 0, fmt.Errorf("hold user: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, "UPDATE uploads SET held_until = "+latestEnd("uploads")+where, Forever, arg)
	if err != nil {
		return 0, fmt.Errorf("hold uploads: %w", err)
	}
	stored, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("hold uploads: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE deleted_uploads SET held_until = "+latestEnd("deleted_uploads")+where, Forever, arg); err != nil {
		return 0, fmt.Errorf("hold trash: %w", err)
	}
	trashed, err := holdTrashPurges(ctx, tx, userID, uploadID, now)
	return int(stored) + trashed, err
}

// Refresh rewrites, in tx, held_until on the upload (stored or in the
// trash) from its holds and its owner's: a restore calls it for an upload
// that comes back held.
func Refresh(ctx context.Context, tx *ent.Tx, ownerID, uploadID string) error {
	_, err := refresh(ctx, tx, ownerID, uploadID, time.Now().UTC())
	return err
}

// holdTrashPurges makes the purge of each trash entry in scope due at the
// end of its window or of its hold, whichever is later, if no purger has
// claimed it yet. It returns how many entries stay in the trash.
func holdTrashPurges(ctx context.Context, tx *ent.Tx, userID, uploadID string, now time.Time) (int, error) {
	q := tx.DeletedUpload.Query().Where(deletedupload.OwnerID(userID))
	if uploadID != "" {
		q.Where(deletedupload.ID(uploadID))
	}
	entries, err := q.Select(deletedupload.FieldID, deletedupload.FieldObjectKey, deletedupload.FieldPurgeAt, deletedupload.FieldHeldUntil).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("read trash: %w", err)
	}
	kept := 0
	for _, d := range entries {
		if d.ObjectKey == "" {
			if inTrashAt(d, now) {
				kept++ // no purge: the janitor's emptyTrash reads held_until
			}
			continue
		}
		due := d.PurgeAt
		if d.HeldUntil != nil && d.HeldUntil.After(due) {
			due = *d.HeldUntil
		}
		// Unclaimed only: a claimed purge may be removing the object now.
		// Released, or lapsed, it is due at the end of its window.
		n, err := tx.ObjectPurge.Update().
			Where(objectpurge.UploadID(d.ID), objectpurge.Attempts(0)).
			SetNextAttemptAt(due).
			Save(ctx)
		if err != nil {
			return 0, fmt.Errorf("hold trash purges: %w", err)
		}
		if inTrashAt(d, now) {
			kept += n
		}
	}
	return kept, nil
}

func inTrashAt(d *ent.DeletedUpload, now time.Time) bool {
	return d.PurgeAt.After(now) || d.HeldUntil != nil && d.HeldUntil.After(now)
}
