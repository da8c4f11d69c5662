//go:build !unix

package testenv

import (
	"testing"
	"time"
)

// CPUTime is zero where the process's CPU time is not read.
func CPUTime(testing.TB) time.Duration { return 0 }
