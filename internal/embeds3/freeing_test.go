package embeds3

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Closing the server removes the files of every delete already answered,
// including those still waiting for their turn to be freed.
func TestStopFreeingRemovesWhatWaits(t *testing.T) {
	t.Parallel()
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.staging, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		name := filepath.Join(s.staging, fmt.Sprint("gone-", i))
		if err := os.WriteFile(name, []byte("a deleted object's bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.free([]string{name}) // queued: nothing frees them yet
	}
	s.startFreeing()
	s.stopFreeing()
	left, err := os.ReadDir(s.staging)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d of 100 deleted objects' files left in staging after stopFreeing", len(left))
	}
}
