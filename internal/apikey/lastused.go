package apikey

import (
	"context"
	"sync"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/apikey"
	"github.com/safedelete/uploads/internal/database"
)

// lastUsedWriteEvery is how long a noted use waits to be written: the
// uses of that time are written together, in one transaction, so that a
// request never waits for a write, nor takes SQLite's write lock, to
// record its key's use.
const lastUsedWriteEvery = 5 * time.Second

// lastUses are the uses of keys noted and not yet written, and the timer
// that writes them.
type lastUses struct {
	client     *ent.Client
	writeEvery time.Duration

	mu      sync.Mutex
	pending map[string]time.Time // key id -> when it was used
	timer   *time.Timer          // set while a write is due

	writing sync.Mutex // held by the write under way
}

func newLastUses(client *ent.Client) *lastUses {
	return &lastUses{client: client, writeEvery: lastUsedWriteEvery}
}

// add notes that keyID was used at, and makes a write due if none is.
func (l *lastUses) add(keyID string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = map[string]time.Time{}
	}
	l.pending[keyID] = at
	if l.timer == nil {
		l.timer = time.AfterFunc(l.writeEvery, l.write)
	}
}

// write writes the uses noted so far, each key's in one UPDATE, all in one
// transaction; a later use another process wrote meanwhile is kept. Best
// effort: a use that fails to be written is not retried (the next one
// will be written).
func (l *lastUses) write() {
	l.writing.Lock()
	defer l.writing.Unlock()
	l.mu.Lock()
	uses := l.pending
	l.pending = nil
	if l.timer != nil {
		l.timer.Stop() // when Flush writes before the timer fires
		l.timer = nil
	}
	l.mu.Unlock()
	if len(uses) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = database.WithTx(ctx, l.client, func(tx *ent.Tx) error {
		for keyID, at := range uses {
			err := tx.APIKey.Update().
				Where(apikey.ID(keyID), apikey.Or(apikey.LastUsedAtIsNil(), apikey.LastUsedAtLT(at))).
				SetLastUsedAt(at).
				Exec(ctx)
			if err != nil {
				return err
			}
		}
		return nil
	})
}
