package durationtext

import (
	"testing"
	"time"
)

func TestShort(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Hour:                  "1h",
		72 * time.Hour:             "72h",
		time.Minute:                "1m",
		90 * time.Second:           "1m30s",
		time.Hour + time.Second:    "1h0m1s",
		time.Hour + 30*time.Minute: "1h30m",
		10 * time.Millisecond:      "10ms",
		0:                          "0s",
	} {
		if got := Short(d); got != want {
			t.Errorf("Short(%v) = %q, want %q", d, got, want)
		}
	}
}
