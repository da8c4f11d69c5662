package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/deletionjob"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/database"
	"github.com/safedelete/uploads/internal/holds"
	"github.com/safedelete/uploads/internal/jobs"
)

// Deleter deletes uploads of one owner: graph's delete core, the one every
// delete goes through.
type Deleter interface {
	// DeleteOwnedBatches deletes the owner's uploads that next returns, a
	// batch at a time, until it returns none; see graph.
	DeleteOwnedBatches(ctx context.Context, actor audit.Actor, ownerID string, limit int, next func(ctx context.Context, atMost int) ([]string, error)) (int, error)
	// PurgeTrash purges at once the objects of the owner's uploads in the
	// trash, closing their restore window, and returns how many.
	PurgeTrash(ctx context.Context, ownerID string) (int, error)
}

// Erasure is what EraseUser did.
type Erasure struct {
	UserID         string `json:"user_id"`
	UploadsDeleted int    `json:"uploads_deleted"`
	KeysRevoked    int    `json:"keys_revoked"`
	// IdentitiesRemoved counts the sign-in identities deleted with the
	// user; only their digests are kept, so that their tokens do not make
	// a new user by themselves.
	IdentitiesRemoved int `json:"identities_removed"`
}

// ErrNoSuchUser is returned by EraseUser for a user id that does not exist.
var ErrNoSuchUser = errors.New("no such user")

// EraseUser deletes a user and everything of theirs: first it revokes their
// keys, so that nothing new arrives; then it deletes their uploads through
// deleter, a batch at a time, each batch one transaction with its purge
// notes; last, in one transaction, their keys, their sign-in identities
// (kept only as digests) and the user record. Interrupted at any point, it
// can be run again and finishes the job: what was done stays done, and no
// object is left unknown (a deleted upload's purge note outlives the
// process; the service's purger finishes it). The counts are this run's.
func EraseUser(ctx context.Context, client *ent.Client, deleter Deleter, userID string) (Erasure, error) {
	result := Erasure{UserID: userID}
	exists, err := client.User.Query().Where(user.ID(userID)).Exist(ctx)
	if err != nil {
		return result, err
	}
	if !exists {
		return result, fmt.Errorf("%w: %q", ErrNoSuchUser, userID)
	}
	result.KeysRevoked, result.IdentitiesRemoved, err = jobs.RevokeAccess(ctx, client, userID)
	if err != nil {
		return result, err
	}
	for stalled := 0; ; {
		// A request authenticated just before the revocation may still
		// create an upload: the user goes only once none is left.
		deleted, err := deleter.DeleteOwnedBatches(ctx, audit.CLI, userID, 0, func(ctx context.Context, atMost int) ([]string, error) {
			return client.Upload.Query().Where(upload.OwnerID(userID), holds.NotHeld(time.Now())).Limit(atMost).IDs(ctx)
		})
		result.UploadsDeleted += deleted
		if err != nil {
			return result, fmt.Errorf("delete uploads: %w", err)
		}
		if _, err := deleter.PurgeTrash(ctx, userID); err != nil {
			return result, fmt.Errorf("purge the trash: %w", err)
		}
		// What a hold keeps stays, and so does its user.
		if held, err := holds.ActiveOf(ctx, client, userID); err != nil || len(held) > 0 {
			return result, err
		}
		err = database.WithTx(ctx, client, func(tx *ent.Tx) error {
			identities, err := jobs.RemoveUser(ctx, tx, userID, "")
			result.IdentitiesRemoved += identities
			return err
		})
		if !errors.Is(err, jobs.ErrUploadsLeft) {
			if err != nil {
				return result, fmt.Errorf("delete user: %w", err)
			}
			return result, nil
		}
		// Uploads are left that a round did not delete: once, a concurrent
		// delete may have raced it; round after round, something keeps
		// them, and looping would never end.
		if deleted > 0 {
			stalled = 0
		} else if stalled++; stalled == maxStalledRounds {
			return result, fmt.Errorf("delete uploads: %w", errUploadsStuck)
		}
	}
}

var errUploadsStuck = errors.New("uploads are left that rounds of deletes did not remove; the user is kept, run it again")

// maxStalledRounds is how many rounds in a row may delete nothing while
// uploads are left before EraseUser gives up.
const maxStalledRounds = 3

// CheckErase says what is wrong with the flags of `users delete`, if
// anything; it runs before anything is opened.
var CheckErase = needsID("users delete")

// RunErase is `users delete --id usr_… [--json] [--detach]`: it starts
// the user's erase job (jobs.StartUserErase; a rerun finds the job a
// killed or interrupted run left, and follows it), then follows it to its
// end, running it here whenever no serving instance does (takeOver). With
// --detach it prints the job's id and returns at once. The output ends as
// it did when the command erased the user itself: with --json, the last
// line has user_id, uploads_deleted, keys_revoked and identities_removed
// (besides the job's fields); the lines before it are the job's progress.
func RunErase(ctx context.Context, client *ent.Client, j *jobs.Jobs, logger *slog.Logger, o Options, out io.Writer) error {
	if err := CheckErase(o); err != nil {
		return err
	}
	if !o.ExceptHeld {
		held, err := holds.ActiveOf(ctx, client, o.ID)
		if err != nil {
			return err
		}
		if len(held) > 0 {
			return &HeldError{UserID: o.ID, Holds: held}
		}
	}
	// Revoked here, before the job starts (which revokes too, finding
	// nothing left), for this run's counts; for a user who does not exist
	// it changes nothing.
	keys, identities, err := jobs.RevokeAccess(ctx, client, o.ID)
	if err != nil {
		return err
	}
	job, err := j.StartUserErase(ctx, o.ID)
	if errors.Is(err, jobs.ErrNoSuchUser) {
		return erasedBefore(ctx, j, o, out, err)
	}
	if err != nil {
		return err
	}
	if o.Detach {
		if o.JSON {
			return json.NewEncoder(out).Encode(summarizeJob(job))
		}
		_, err := fmt.Fprintln(out, job.ID)
		return err
	}
	p := newProgress(out, o.JSON, "Erasing "+o.ID)
	final, err := follow(ctx, j, job.ID, takeOver(j, job.ID, logger), p.step)
	if err != nil {
		return p.abandon(fmt.Errorf("%w; it goes on in a serving instance, or when this command is run again", err))
	}
	erased := Erasure{UserID: o.ID, UploadsDeleted: final.DeletedCount, KeysRevoked: keys, IdentitiesRemoved: identities}
	text := finalText(final)
	if succeeded(final) {
		text = fmt.Sprintf("Deleted user %s: %d uploads deleted, %d keys revoked, %d sign-in identities removed (job %s).\n",
			erased.UserID, erased.UploadsDeleted, erased.KeysRevoked, erased.IdentitiesRemoved, final.ID)
	}
	if err := p.finish(final, erasedLine{summarizeJob(final), erased}, text); err != nil {
		return err
	}
	if err := jobOutcome(final); err != nil {
		return fmt.Errorf("%w; the user stays, their keys revoked: run users delete again to erase them", err)
	}
	return nil
}

// HeldError is `users delete` of a user with holds in force, without
// --except-held: nothing was changed.
type HeldError struct {
	UserID string
	Holds  []*ent.Hold
}

func (e *HeldError) Error() string {
	names := make([]string, len(e.Holds))
	for i, h := range e.Holds {
		what := "the user"
		if h.UploadID != nil {
			what = *h.UploadID
		}
		names[i] = fmt.Sprintf("%s (%s: %s)", h.ID, what, h.Reason)
	}
	return fmt.Sprintf("user %s is under legal hold, so nothing was deleted: %s; release the holds (uploads holds release --id HOLD_ID), or erase all else with --except-held",
		e.UserID, strings.Join(names, ", "))
}

// erasedLine is the last JSON line of `users delete`: the job's final
// state and what the command printed before it erased through a job.
type erasedLine struct {
	JobSummary
	Erasure
}

// erasedBefore answers `users delete` of a user who does not exist: if an
// erase job removed them (and is kept, JOB_RETENTION), the command's work
// is done and it says by which job; otherwise it is noSuchUser.
func erasedBefore(ctx context.Context, j *jobs.Jobs, o Options, out io.Writer, noSuchUser error) error {
	done, err := j.List(ctx, o.ID, 1, deletionjob.StatusSUCCEEDED)
	if err != nil || len(done) == 0 || done[0].Kind != deletionjob.KindUSER_ERASE {
		return noSuchUser
	}
	job := done[0]
	if o.JSON {
		return json.NewEncoder(out).Encode(erasedLine{summarizeJob(job), Erasure{UserID: o.ID, UploadsDeleted: job.DeletedCount}})
	}
	_, err = fmt.Fprintf(out, "User %s was erased already, by job %s (finished %s): %d uploads deleted.\n",
		o.ID, job.ID, formatOptional(utc(job.FinishedAt), "-"), job.DeletedCount)
	return err
}
