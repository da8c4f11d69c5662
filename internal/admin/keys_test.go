package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/admin"
)

// TestParseExpiry: the forms --expires takes, and the times it refuses.
func TestParseExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 15, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"90d", now.AddDate(0, 0, 90)},
		{"1d", now.Add(24 * time.Hour)},
		{"36h", now.Add(36 * time.Hour)},
		{"90m", now.Add(90 * time.Minute)},
		// A date: the key works through that day, UTC.
		{"2027-01-31", time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-06", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}, // today: until tonight's midnight
		{"2027-01-31T12:00:00Z", time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC)},
		{"2027-01-31T12:00:00+02:00", time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC)},
	} {
		got, err := admin.ParseExpiry(c.in, now)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for in, want := range map[string]string{
		"2026-12-05":           "not in the future", // yesterday: it would never work
		"2026-12-06T15:00:00Z": "not in the future",
		"0d":                   "not in the future",
		"-1h":                  "not in the future",
		"0s":                   "not in the future",
		"99999999999999d":      "too far",
		"1.5d":                 "want a number of days",
		"90D":                  "want a number of days",
		"soon":                 "want a number of days",
		"":                     "want a number of days",
		"2027-02-30":           "want a number of days",
		"31/01/2027":           "want a number of days",
	} {
		if got, err := admin.ParseExpiry(in, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}
