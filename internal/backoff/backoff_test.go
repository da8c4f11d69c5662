package backoff_test

import (
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/backoff"
)

// TestDelay: after n failures the wait is within the upper half of
// first·2ⁿ⁻¹, never above limit, and not always the same (jitter).
func TestDelay(t *testing.T) {
	t.Parallel()
	const first, limit = time.Second, time.Hour
	for attempts := 0; attempts <= 100; attempts++ {
		base := limit
		if attempts < 13 { // 2^12 s > 1 h
			base = min(first<<max(attempts-1, 0), limit)
		}
		seen := map[time.Duration]bool{}
		for range 50 {
			d := backoff.Delay(attempts, first, limit)
			if d < base/2 || d > base {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempts, d, base/2, base)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("Delay(%d) always %v: no jitter", attempts, base)
		}
	}
	if d := backoff.Delay(5, time.Hour, time.Millisecond); d > time.Millisecond {
		t.Fatalf("Delay with first > max = %v, want at most limit", d)
	}
	if d := backoff.Delay(1<<40, 1<<61+1, 1<<62+1); d < 1<<61 {
		t.Fatalf("huge durations overflowed: %v", d)
	}
}
