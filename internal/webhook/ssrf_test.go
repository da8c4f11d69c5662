package webhook_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/ent/webhookdelivery"
	"github.com/safedelete/uploads/internal/ids"
	"github.com/safedelete/uploads/internal/webhook"
)

// TestBlockedAddresses: the addresses of the service's own host and
// networks are refused in every form; public ones are not.
func TestBlockedAddresses(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1":                   "loopback",
		"127.8.9.10":                  "loopback",
		"::1":                         "loopback",
		"::ffff:127.0.0.1":            "loopback",
		"10.1.2.3":                    "private",
		"172.16.0.1":                  "private",
		"192.168.1.1":                 "private",
		"::ffff:10.0.0.1":             "private",
		"fd12:3456::1":                "private",
		"fc00::1":                     "private",
		"169.254.169.254":             "link-local",
		"::ffff:169.254.169.254":      "link-local",
		"fe80::1":                     "link-local",
		"fe80::1%eth0":                "link-local",
		"0.0.0.0":                     "unspecified",
		"::":                          "unspecified",
		"0.1.2.3":                     `"this network"`,
		"224.0.0.1":                   "multicast",
		"ff02::1":                     "multicast",
		"100.64.0.1":                  "carrier-grade NAT",
		"100.127.255.254":             "carrier-grade NAT",
		"255.255.255.255":             "reserved",
		"198.18.0.1":                  "benchmarking",
		"64:ff9b::7f00:1":             "loopback address (127.0.0.1, embedded in IPv6)",
		"64:ff9b::a9fe:a9fe":          "link-local address (169.254.169.254",
		"2002:a00:1::1":               "private network address (10.0.0.1",
		"::7f00:1":                    "IPv4-compatible",
		"8.8.8.8":                     "",
		"1.1.1.1":                     "",
		"100.128.0.1":                 "",
		"2606:4700:4700::1111":        "",
		"::ffff:8.8.8.8":              "",
		"64:ff9b::808:808":            "",
		"2a00:1450:4001:80b::200e":    "",
		"172.32.0.1":                  "",
		"192.169.0.1":                 "",
		"169.255.0.1":                 "",
		"fb00::1":                     "",
		"2001:4860:4860::8888":        "",
		"2002:808:808::1":             "",
		"11.0.0.1":                    "",
		"9.255.255.255":               "",
		"223.255.255.255":             "",
		"100.63.255.255":              "",
		"198.20.0.1":                  "",
		"192.0.1.1":                   "",
		"fec0::1":                     "site-local",
		"100::1":                      "discard-only",
		"64:ff9b:1::a00:1":            "local-use NAT64",
		"::ffff:100.64.0.1":           "carrier-grade NAT",
		"::ffff:0.0.0.0":              "unspecified",
		"::ffff:224.0.0.1":            "multicast",
		"::ffff:255.255.255.255":      "reserved",
		"::ffff:192.0.0.1":            "IETF",
		"::ffff:198.19.255.255":       "benchmarking",
		"::ffff:172.31.255.255":       "private",
		"::ffff:169.254.0.1":          "link-local",
		"::ffff:127.255.255.255":      "loopback",
		"::ffff:0.0.0.1":              `"this network"`,
		"::ffff:1.2.3.4":              "",
		"::ffff:100.128.0.0":          "",
		"2002:6440:1::1":              "carrier-grade NAT",
		"64:ff9b::6440:1":             "carrier-grade NAT",
		"64:ff9b::c0a8:101":           "private",
		"64:ff9b::e000:1":             "multicast",
		"2002:e000:1::1":              "multicast",
		"2002:0:1::1":                 `"this network"`,
		"2002:a9fe:a9fe::1":           "link-local",
		"2002:7f00:1::1":              "loopback",
		"64:ff9b::1":                  `"this network"`,
		"64:ff9b::ffff:ffff":          "reserved",
		"2001:db8::1":                 "",
		"2400:cb00:2048:1::c629:d7a2": "",
	} {
		got := webhook.BlockedReason(netip.MustParseAddr(addr))
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

// TestPrivateAddressesRefusedAtConnect: unless private networks are
// allowed, a delivery to the service's own host or network is refused by
// the dialer's Control, on the address actually dialled (after DNS: a name
// that resolves to loopback is caught), before any packet leaves. The
// error says why, the delivery fails, and the local receiver hears nothing.
func TestPrivateAddressesRefusedAtConnect(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	u, _ := url.Parse(rcv.URL)
	port := u.Port()
	targets := map[string]string{ // URL → the reason given
		"http://127.0.0.1:" + port + "/hooks":               "refused to connect to 127.0.0.1: loopback address",
		"http://localhost:" + port + "/hooks":               "loopback address",
		"http://169.254.169.254/latest/meta-data/":          "refused to connect to 169.254.169.254: link-local address",
		"http://10.0.0.1/hooks":                             "refused to connect to 10.0.0.1: private network address",
		"http://100.64.0.1/hooks":                           "carrier-grade NAT",
		"http://0.0.0.0:" + port + "/hooks":                 "unspecified address",
		"http://[::ffff:127.0.0.1]:" + port + "/":           "refused to connect to 127.0.0.1: loopback address",
		"https://127.0.0.1:" + port + "/?token=" + urlToken: "loopback address",
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil { // the host has IPv6
		ln.Close()
		targets["http://[::1]:"+port+"/hooks"] = "refused to connect to ::1: loopback address"
		targets["http://[fe80::1]/hooks"] = "link-local address"
		targets["http://[fd00::1]/hooks"] = "private network address"
		targets["http://[64:ff9b::7f00:1]/hooks"] = "loopback address (127.0.0.1, embedded in IPv6)"
	}
	ctx := context.Background()
	strict := w.sender(webhook.Options{Timeout: 500 * time.Millisecond, Concurrency: 32})
	for target, reason := range targets {
		began := time.Now()
		_, err := strict.Post(ctx, target)
		if !webhook.RefusedBeforeConnect(err) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v (after %v), want refused by the dialer: %s", target, err, time.Since(began), reason)
		}
		owner, _, _ := w.endpoint(target)
		w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))
	}

	attempted, delivered, err := strict.RunOnce(ctx)
	if err != nil || attempted != len(targets) || delivered != 0 {
		t.Fatalf("RunOnce = %d, %d, %v; want %d attempted, none delivered", attempted, delivered, err, len(targets))
	}
	// The owner reads that the host is unreachable, not why: the reason
	// would tell where a name leads (see TestUnreachableSaysNoMore).
	for _, d := range w.deliveries() {
		ep := d.QueryEndpoint().OnlyX(ctx)
		if d.Status != webhookdelivery.StatusPENDING || d.LastError != webhook.Unreachable {
			t.Errorf("%s: %s, %q; want a failure saying %q", ep.URL, d.Status, d.LastError, webhook.Unreachable)
		}
	}
	if got := rcv.got(); len(got) != 0 {
		t.Fatalf("the local receiver got %d requests", len(got))
	}

	// The same loopback receiver is reachable when private networks are
	// allowed: the refusals above came from the check, not the URLs.
	if _, err := w.sender(local).Post(ctx, rcv.URL); err == nil || webhook.RefusedBeforeConnect(err) || len(rcv.got()) != 1 {
		t.Fatalf("with private networks allowed: %v, %d requests; want it reached (and refused as unsigned)", err, len(rcv.got()))
	}
}

// TestRedirectsAreNotFollowed: a receiver that redirects (to a private
// address, say) fails the attempt; the redirect's target is never asked.
// Private networks are allowed here so that both servers are reachable:
// only the refusal to follow stops the second request.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			target := newReceiver(t)
			redirector := newReceiver(t)
			owner, _, secret := w.endpoint(redirector.URL)
			redirector.trust(secret)
			target.trust(secret)
			redirector.redirectTo(target.URL, code)
			w.enqueue(event(webhook.EventUploadDeleted, owner, ids.NewUpload()))

			attempted, delivered, err := w.sender(local).RunOnce(context.Background())
			if err != nil || attempted != 1 || delivered != 0 {
				t.Fatalf("RunOnce = %d, %d, %v; want 1 attempted, none delivered", attempted, delivered, err)
			}
			d := w.deliveries()[0]
			if d.LastStatusCode != code || d.LastError != fmt.Sprintf("HTTP %d (redirects are not followed)", code) {
				t.Errorf("delivery: status %d, %q; want %d, redirects are not followed", d.LastStatusCode, d.LastError, code)
			}
			if n := len(redirector.got()); n != 1 {
				t.Errorf("the redirector got %d requests, want 1", n)
			}
			if n := len(target.got()); n != 0 {
				t.Errorf("the redirect's target got %d requests", n)
			}
		})
	}
}

// TestUnreachableSaysNoMore: last_error reads the same for a name that
// does not resolve and one that resolves to a private address, and shows
// no address: the owner of an endpoint cannot use it to learn what the
// service's internal names resolve to.
func TestUnreachableSaysNoMore(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	strict := w.sender(webhook.Options{Timeout: 500 * time.Millisecond})
	_, refused := strict.Post(ctx, "http://10.1.2.3/hooks") // as if intranet.example resolved to it
	unresolved := &url.Error{Op: "Post", URL: "http://intranet.example/hooks", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "intranet.example", IsNotFound: true},
	}}
	for _, err := range []error{refused, unresolved} {
		if got := strict.Describe(ctx, err); got != webhook.Unreachable || strings.Contains(got, "10.1.2.3") {
			t.Errorf("%v: last_error %q, want %q", err, got, webhook.Unreachable)
		}
	}
}
