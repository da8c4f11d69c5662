// Package durationtext writes durations as people write them in settings
// and messages: 1h and 72h, not 1h0m0s and 72h0m0s.
package durationtext

import (
	"strings"
	"time"
)

// Short is d without zero minutes and seconds: 1h, not 1h0m0s; 1m30s stays.
func Short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
