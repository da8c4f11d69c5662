// Package backoff spaces the retries of background work (webhook
// deliveries and object purges): exponential in the number of attempts,
// capped, with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay returns how long to wait after the given number of failed
// attempts: first after one, doubling with each further one up to limit. The
// result is drawn from the upper half of that, so that work failed by one
// outage does not all retry at the same instant.
func Delay(attempts int, first, limit time.Duration) time.Duration {
	d := min(first, limit)
	for i := 1; i < attempts && d < limit; i++ {
		if d > limit/2 {
			d = limit // doubling would pass it, or overflow
		} else {
			d *= 2
		}
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
