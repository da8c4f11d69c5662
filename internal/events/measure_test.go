package events_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/auditevent"
	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
)

// TestMeasureSubscriptions measures, for docs/performance.md, the time
// from a delete on one instance to its uploadEvents message on another,
// and the heap that idle subscriptions hold. It runs only with MEASURE=1
// (on PostgreSQL, with TEST_DATABASE_URL, for two instances to share the
// database); it prints FIGURE lines and asserts nothing about timing.
func TestMeasureSubscriptions(t *testing.T) {
	if os.Getenv("MEASURE") == "" {
		t.Skip("a measurement: MEASURE=1")
	}
	t.Run("latency", measureLatency)
	t.Run("idle", measureIdle)
}

func measureLatency(t *testing.T) {
	const deletes = 300
	a := testenv.New(t, testenv.Options{})
	b := a // SQLite serves one instance: the delete is made where it is heard
	if a.Config.DatabaseURL != "" {
		b = a.NewInstance()
	}
	_, key := a.NewUser()
	uploads := make([]*ent.Upload, deletes)
	for i := range uploads {
		uploads[i] = b.MustUpload(key, fmt.Sprintf("f%d.txt", i), []byte("x"))
	}
	s := subscribe(t, a, key, "")
	var fromWritten, fromAnswer, fromSent []time.Duration
	lastSeen, received := 0, map[int]bool{}
	for _, u := range uploads {
		sent := time.Now()
		deleteUpload(t, b, key, u.ID)
		answered := time.Now()
		for {
			var m message
			select {
			case m = <-s.messages:
			case <-time.After(20 * time.Second):
				got, _ := a.Client().AuditEvent.Query().Where(auditevent.IDGT(lastSeen - 12)).All(context.Background())
				for _, e := range got {
					t.Logf("in the trail: %d %s %s %s received=%v", e.ID, e.Kind, e.UploadID, e.CreatedAt.Format(time.StampMicro), received[e.ID])
				}
				for _, line := range strings.Split(a.Logs.String(), "\n") {
					if strings.Contains(line, "events:") {
						t.Log(line)
					}
				}
				t.Fatalf("no event for the delete of %s (last seen %d)", u.ID, lastSeen)
			}
			if id, err := strconv.Atoi(m.event.ID); err == nil {
				lastSeen = id
				received[id] = true
			}
			if m.event.Kind == "DELETED" && m.event.UploadID == u.ID {
				fromWritten = append(fromWritten, m.at.Sub(m.event.CreatedAt))
				fromAnswer = append(fromAnswer, max(m.at.Sub(answered), 0))
				fromSent = append(fromSent, m.at.Sub(sent))
				break
			}
		}
	}
	engine := "SQLite"
	if a.Config.DatabaseURL != "" {
		engine = "PostgreSQL"
	}
	t.Logf("FIGURE subscriptions latency %s, %d deletes, heard on another instance (PostgreSQL) or the same (SQLite): from the event's row being written (just before the commit) p50 %v p99 %v max %v; from the delete's answer p50 %v p99 %v; from sending the delete p50 %v p99 %v",
		engine, deletes, pct(fromWritten, 50), pct(fromWritten, 99), pct(fromWritten, 100), pct(fromAnswer, 50), pct(fromAnswer, 99), pct(fromSent, 50), pct(fromSent, 99))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	return s[max(i, 0)].Round(10 * time.Microsecond)
}

// measureIdle opens 1,000 SSE subscriptions over raw connections (whose
// client side holds next to nothing in this process) and reports the heap
// and goroutines they add to the server.
func measureIdle(t *testing.T) {
	const n = 1000
	env := testenv.New(t, testenv.Options{Configure: func(c *config.Config) { c.SubscriptionsPerCredential = n + 1 }})
	_, key := env.NewUser()
	u, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"query":%q}`, "subscription { uploadEvents { id kind uploadId } }")
	request := "POST /graphql HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n" +
		"X-Api-Key: " + key + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
	// One subscription first: the feed's reader and the first request's
	// one-time costs are not the subscriptions'.
	conns := []net.Conn{dialSSE(t, u.Host, request)}
	env.Eventually(20*time.Second, "the first subscription", func() bool { return env.App.Events.Open() == 1 })
	before, goroutinesBefore := heap(), runtime.NumGoroutine()
	// One at a time: a thousand at once would ask PostgreSQL for a
	// connection each (to check the key), past its max_connections.
	for i := range n {
		conns = append(conns, dialSSE(t, u.Host, request))
		env.Eventually(20*time.Second, "the subscription open", func() bool { return env.App.Events.Open() == i+2 })
	}
	after, goroutinesAfter := heap(), runtime.NumGoroutine()
	t.Logf("FIGURE subscriptions idle: %d SSE subscriptions add %.1f MiB of heap (%.1f KiB each) and %d goroutines (%.1f each)",
		n, float64(after-before)/(1<<20), float64(after-before)/1024/n, goroutinesAfter-goroutinesBefore, float64(goroutinesAfter-goroutinesBefore)/n)
	for _, c := range conns {
		c.Close()
	}
}

func dialSSE(t *testing.T, host, request string) net.Conn {
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	return c
}

func heap() uint64 {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
