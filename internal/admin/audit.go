package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/audit"
)

// AuditEntry is one row of `audit`.
type AuditEntry struct {
	ID        int       `json:"id"`
	Time      time.Time `json:"time"`
	UploadID  string    `json:"upload_id"`
	Kind      string    `json:"kind"`
	Actor     string    `json:"actor"`
	Via       string    `json:"via"`
	RequestID string    `json:"request_id"`
}

// AuditOf returns a user's audit events, newest first, at most limit (0:
// all). An erased user's trail is still there (until AUDIT_RETENTION prunes
// it): only a user who never had an event nor exists is an error.
func AuditOf(ctx context.Context, client *ent.Client, userID string, limit int) ([]AuditEntry, error) {
	query := client.AuditEvent.Query().Where(auditevent.OwnerID(userID)).Order(ent.Desc(auditevent.FieldID))
	if limit > 0 {
		query.Limit(limit)
	}
	events, err := query.All(ctx)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		exists, err := client.User.Query().Where(user.ID(userID)).Exist(ctx)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, fmt.Errorf("%w and no audit events: %q", ErrNoSuchUser, userID)
		}
	}
	entries := make([]AuditEntry, len(events))
	for i, e := range events {
		entries[i] = AuditEntry{
			ID: e.ID, Time: e.CreatedAt.UTC(), UploadID: e.UploadID, Kind: e.Kind.String(),
			Actor: e.Actor, Via: e.Via.String(), RequestID: e.RequestID,
		}
	}
	return entries, nil
}

func showAudit(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	entries, err := AuditOf(ctx, client, o.UserID, o.Limit)
	if err != nil {
		return err
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(out, "No audit events.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUPLOAD ID\tEVENT\tACTOR\tVIA\tREQUEST ID")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339Nano), e.UploadID, e.Kind, e.Actor, e.Via, orDash(e.RequestID))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ErrChainBroken is audit verify's answer when a user's chain is broken:
// its report names the first event changed, removed or reordered.
var ErrChainBroken = errors.New("the audit trail does not verify")

func verifyAudit(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	report, err := audit.Verify(ctx, client, o.UserID)
	if err != nil {
		return err
	}
	if report.Breaks == nil {
		report.Breaks = []audit.Break{}
	}
	if o.JSON {
		err = json.NewEncoder(out).Encode(report)
	} else {
		fmt.Fprintf(out, "Checked %s of %s", plural(report.Events, "event"), plural(report.Users, "user"))
		if report.LegacyEvents > 0 {
			fmt.Fprintf(out, " (%d written before the chain, unchecked)", report.LegacyEvents)
		}
		if len(report.Breaks) == 0 {
			_, err = fmt.Fprintln(out, ": every chain is whole.")
		} else {
			fmt.Fprintf(out, ": %d broken.\n", len(report.Breaks))
			for _, b := range report.Breaks {
				fmt.Fprintf(out, "%s: event %d %s: %s\n", b.UserID, b.EventID, b.Problem, b.Detail)
			}
		}
	}
	if err == nil && len(report.Breaks) > 0 {
		return fmt.Errorf("%w: %d users' chains are broken", ErrChainBroken, len(report.Breaks))
	}
	return err
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
