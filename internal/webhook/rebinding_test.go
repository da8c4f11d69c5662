package webhook_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/webhook"
)

// rebindingDNS is a DNS server on loopback that answers every name as a
// rebinding attacker's server does: with a public address the first time
// (what a check before connecting would see), then with the private one
// (what a second lookup, made to connect, would get). It answers over
// UDP, for the Go resolver only.
type rebindingDNS struct {
	conn          net.PacketConn
	public        netip.Addr // IPv6, so that the first answer is an AAAA record
	private       netip.Addr // IPv4: every A answer after the first
	mu            sync.Mutex
	asked         map[uint16]int // queries so far, by type
	privateAnswer int            // how many times it answered with private
}

func newRebindingDNS(t *testing.T, public, private netip.Addr) *rebindingDNS {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &rebindingDNS{conn: conn, public: public, private: private, asked: map[uint16]int{}}
	go d.serve()
	return d
}

// resolver is a Go resolver that asks only d.
func (d *rebindingDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

const (
	typeA    = 1
	typeAAAA = 28
)

func (d *rebindingDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if answer := d.answer(buf[:n]); answer != nil {
			_, _ = d.conn.WriteTo(answer, from)
		}
	}
}

// answer builds the reply to one query: its header and question, and at
// most one record.
func (d *rebindingDNS) answer(query []byte) []byte {
	if len(query) < 12 {
		return nil
	}
	end := 12
	for end < len(query) && query[end] != 0 { // the question's name, label by label
		end += int(query[end]) + 1
	}
	end += 5 // the name's final 0, its type and class
	if end > len(query) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(query[end-4:])
	d.mu.Lock()
	d.asked[qtype]++
	var rdata []byte
	switch {
	case qtype == typeAAAA && d.asked[qtype] == 1:
		a := d.public.As16()
		rdata = a[:]
	case qtype == typeA && d.asked[qtype] > 1:
		a := d.private.As4()
		rdata = a[:]
		d.privateAnswer++
	}
	d.mu.Unlock()
	reply := append([]byte{}, query[:end]...)
	binary.BigEndian.PutUint16(reply[2:], 0x8180) // a response, recursion desired and available, no error
	binary.BigEndian.PutUint16(reply[4:], 1)      // one question
	binary.BigEndian.PutUint16(reply[6:], 0)      // answers, set below
	binary.BigEndian.PutUint32(reply[8:], 0)      // no authority, no additional records
	if rdata != nil {
		binary.BigEndian.PutUint16(reply[6:], 1)
		reply = append(reply, 0xc0, 12) // the name: a pointer to the question's
		reply = binary.BigEndian.AppendUint16(reply, qtype)
		reply = binary.BigEndian.AppendUint16(reply, 1) // IN
		reply = binary.BigEndian.AppendUint32(reply, 0) // TTL 0: ask again next time
		reply = binary.BigEndian.AppendUint16(reply, uint16(len(rdata)))
		reply = append(reply, rdata...)
	}
	return reply
}

func (d *rebindingDNS) answeredPrivate() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.privateAnswer
}

// TestDNSRebindingRefused: a name whose DNS answers a public address the
// first time and the service's own loopback the next (DNS rebinding)
// never gets a delivery to the loopback listener: whatever a lookup said
// before, the address actually dialled is checked, and refused before any
// packet leaves. The attempt that the guard lets dial the public address
// (2001:db8::/32, reserved for documentation) is stopped by the test just
// before connect, so no packet leaves this machine either way.
func TestDNSRebindingRefused(t *testing.T) {
	// Serial: it swaps the package's resolver and dial hook (UseResolver, ConfineDials), which every sender made meanwhile would use.
	public, private := netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("127.0.0.1")
	if webhook.BlockedReason(public) != "" || webhook.BlockedReason(private) == "" {
		t.Fatalf("the premise: %s must be allowed and %s refused", public, private)
	}
	dns := newRebindingDNS(t, public, private)
	webhook.UseResolver(t, dns.resolver())
	var offMachine atomic.Int32
	webhook.ConfineDials(t, func(address string) error {
		host, _, _ := net.SplitHostPort(address)
		if addr, err := netip.ParseAddr(host); err != nil || !addr.IsLoopback() {
			offMachine.Add(1)
			return errors.New("test: not dialling an address off this machine")
		}
		return nil
	})
	w := newWorld(t)
	rcv := newReceiver(t)
	target, _ := url.Parse(rcv.URL)
	target.Host = net.JoinHostPort("rebind.example", target.Port())
	strict := w.sender(webhook.Options{Timeout: 500 * time.Millisecond, Concurrency: 1})

	ctx := context.Background()
	for attempt := 1; attempt <= 2; attempt++ {
		_, err := strict.Post(ctx, target.String())
		if err == nil {
			t.Fatalf("attempt %d at %s succeeded", attempt, target)
		}
		t.Logf("attempt %d: %v", attempt, err)
		if dns.answeredPrivate() > 0 && !webhook.RefusedBeforeConnect(err) {
			t.Errorf("attempt %d, after DNS answered %s: %v; want refused by the dialer", attempt, private, err)
		}
	}
	if offMachine.Load() == 0 {
		t.Fatalf("the guard never let %s through: the test did not test a lookup that changed", public)
	}
	if dns.answeredPrivate() == 0 {
		t.Fatalf("DNS never answered %s: the test did not test", private)
	}
	if got := rcv.got(); len(got) != 0 {
		t.Fatalf("the loopback listener got %d requests", len(got))
	}
}
