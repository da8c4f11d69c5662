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
	"github.com/safedelete/uploads/ent/hold"
	"github.com/safedelete/uploads/internal/audit"
	"github.com/safedelete/uploads/internal/holds"
)

// The holds commands.
var (
	HoldsPlace   = Command{checkHoldsPlace, placeHold}
	HoldsRelease = Command{needsID("holds release"), releaseHold}
	HoldsList    = Command{nil, listHolds}
)

func checkHoldsPlace(o Options) error {
	if (o.UploadID == "") == (o.UserID == "") {
		return errors.New("holds place needs --upload or --user (one of them)")
	}
	if o.Reason == "" {
		return errors.New("holds place needs --reason")
	}
	_, err := parseUntil(o.Until)
	return err
}

// parseUntil reads --until: a date (the hold lasts through that day, UTC)
// or an RFC 3339 time; empty is no end.
func parseUntil(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if day, err := time.Parse(time.DateOnly, s); err == nil {
		return day.AddDate(0, 0, 1), nil
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--until %q is neither a date (2027-06-30) nor an RFC 3339 time", s)
	}
	return at, nil
}

// HoldSummary is a hold as the holds commands print it.
type HoldSummary struct {
	HoldID     string     `json:"hold_id"`
	UserID     string     `json:"user_id"`
	UploadID   *string    `json:"upload_id"`
	Reason     string     `json:"reason"`
	PlacedBy   string     `json:"placed_by"`
	CreatedAt  time.Time  `json:"created_at"`
	Until      *time.Time `json:"until"`
	ReleasedAt *time.Time `json:"released_at"`
	ReleasedBy string     `json:"released_by,omitempty"`
	Active     bool       `json:"active"`
}

func summarizeHold(h *ent.Hold) HoldSummary {
	return HoldSummary{
		HoldID: h.ID, UserID: h.UserID, UploadID: h.UploadID, Reason: h.Reason, PlacedBy: h.PlacedBy,
		CreatedAt: h.CreatedAt.UTC(), Until: utc(h.Until), ReleasedAt: utc(h.ReleasedAt), ReleasedBy: h.ReleasedBy,
		Active: holds.Active(h, time.Now()),
	}
}

func placeHold(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	until, err := parseUntil(o.Until)
	if err != nil {
		return err
	}
	h, err := holds.Place(ctx, client, holds.Spec{
		UploadID: o.UploadID, UserID: o.UserID, Reason: o.Reason, Until: until, Actor: audit.CLI,
	}, nil)
	if errors.Is(err, holds.ErrNotFound) {
		if o.UploadID != "" {
			return fmt.Errorf("no upload with id %q (nor in the trash)", o.UploadID)
		}
		return fmt.Errorf("no user with id %q", o.UserID)
	}
	if err != nil {
		return err
	}
	return printHold(out, o.JSON, h, "Placed")
}

func releaseHold(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	h, err := holds.Release(ctx, client, o.ID, audit.CLI, "", nil)
	switch {
	case errors.Is(err, holds.ErrNotFound):
		return fmt.Errorf("no hold with id %q", o.ID)
	case errors.Is(err, holds.ErrReleased):
		return fmt.Errorf("hold %s was released already", o.ID)
	case err != nil:
		return err
	}
	return printHold(out, o.JSON, h, "Released")
}

func printHold(out io.Writer, asJSON bool, h *ent.Hold, done string) error {
	if asJSON {
		return json.NewEncoder(out).Encode(summarizeHold(h))
	}
	_, err := fmt.Fprintf(out, "%s hold %s on %s (until %s): %s\n", done, h.ID, holdSubject(h), formatOptional(h.Until, "released"), h.Reason)
	return err
}

func holdSubject(h *ent.Hold) string {
	if h.UploadID != nil {
		return "upload " + *h.UploadID
	}
	return "user " + h.UserID
}

func listHolds(ctx context.Context, client *ent.Client, o Options, out io.Writer) error {
	q := client.Hold.Query().Order(ent.Asc(hold.FieldCreatedAt), ent.Asc(hold.FieldID))
	if o.UserID != "" {
		q.Where(hold.UserID(o.UserID))
	}
	all, err := q.All(ctx)
	if err != nil {
		return err
	}
	entries := make([]HoldSummary, len(all))
	for i, h := range all {
		entries[i] = summarizeHold(h)
	}
	if o.JSON {
		return json.NewEncoder(out).Encode(entries)
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(out, "No holds.")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOLD ID\tON\tACTIVE\tCREATED\tUNTIL\tRELEASED\tREASON")
	for _, h := range all {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\t%s\n", h.ID, holdSubject(h), holds.Active(h, time.Now()),
			formatTime(h.CreatedAt), formatOptional(h.Until, "-"), formatOptional(h.ReleasedAt, "-"), h.Reason)
	}
	return tw.Flush()
}
