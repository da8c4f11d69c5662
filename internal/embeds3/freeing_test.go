package embeds3

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Closing the server removes the files of every delete already answered,
// including those still waiting for their turn to be freed.
func TestStopFreeingRemovesWhatWaits(t *testing.T) {
	t.Parallel()
	s := stagingStore(t)
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

// A delete that finds maxFreeing files waiting to be removed removes its
// own before it is answered.
func TestFreeingIsBounded(t *testing.T) {
	t.Parallel()
	s := stagingStore(t)
	s.waiting.Store(maxFreeing) // as many as may wait, none removed yet
	name := filepath.Join(s.staging, "gone-over-the-bound")
	if err := os.WriteFile(name, []byte("a deleted object's bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.free([]string{name})
	if _, err := os.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a delete over the bound left its file to wait: stat says %v", err)
	}
	if got := s.waiting.Load(); got != maxFreeing {
		t.Errorf("%d files counted waiting after a delete removed its own, want %d", got, maxFreeing)
	}
}

// stagingStore is a store over a new directory, with its staging made and
// no goroutine freeing files yet.
func stagingStore(t *testing.T) *store {
	t.Helper()
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.staging, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}
