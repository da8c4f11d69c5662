package audit

import (
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/safedelete/uploads/ent/auditevent"
)

// TestInsertEvents: the INSERT of one event, built once, and of several
// are the statements Ent's builder makes for those events' values.
func TestInsertEvents(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, n := range []int{1, 2, 1} { // the one-event statement, before and after it is kept
		insert := sql.Dialect(dialect.Postgres).Insert(auditevent.Table).Columns(eventColumns...)
		for range n {
			insert.Values("upl_x", "usr_x", Deleted, "key_x", auditevent.ViaREST, "req", now, int64(2), []byte{1}, []byte{2})
		}
		want, _ := insert.Query()
		if got := insertEvents(n); got != want {
			t.Errorf("%d events:\n  %s\nwant\n  %s", n, got, want)
		}
	}
}
