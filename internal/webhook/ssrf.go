package webhook

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength is the longest endpoint URL accepted.
const MaxURLLength = 2048

// ValidateURL checks an endpoint URL given at registration: absolute,
// https (or http when allowHTTP), with a host, without credentials. Its
// errors are PublicErrors. Where the URL leads is checked when a delivery
// connects (see newHTTPClient): a name resolved now could resolve
// elsewhere later.
func ValidateURL(raw string, allowHTTP bool) error {
	schemes := "https"
	if allowHTTP {
		schemes = "http or https"
	}
	if strings.TrimSpace(raw) == "" {
		return invalid("The webhook URL must not be blank")
	}
	if len(raw) > MaxURLLength {
		return invalid(fmt.Sprintf("The webhook URL must be at most %d characters", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("The webhook URL is not a valid URL")
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https", scheme == "http" && allowHTTP:
	case scheme == "http":
		return invalid("The webhook URL must use https")
	default:
		return invalid("The webhook URL must be an absolute " + schemes + " URL")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return invalid("The webhook URL must name a host")
	}
	if u.User != nil {
		return invalid("The webhook URL must not contain a user name or password")
	}
	return nil
}

// newHTTPClient returns the client deliveries are sent with. Unless
// opts.AllowPrivateNetworks, it refuses to connect to addresses of the
// service's own host and networks: the check runs on the address actually
// dialled, after DNS, so a name that resolves (or re-resolves) to one is
// caught too. Redirects are not followed (a 3xx is a failed attempt), nor
// are proxies from the environment used: either would let someone else
// choose where the request goes.
func newHTTPClient(opts Options) *http.Client {
	dialer := &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second, Resolver: resolver}
	if !opts.AllowPrivateNetworks {
		dialer.Control = refuseBlocked
	}
	if confine != nil {
		guard := dialer.Control
		dialer.Control = func(network, address string, c syscall.RawConn) error {
			if guard != nil {
				if err := guard(network, address, c); err != nil {
					return err
				}
			}
			return confine(address)
		}
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           4 * opts.Concurrency,
		MaxIdleConnsPerHost:    opts.Concurrency,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout, // the whole attempt, body included
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Seams for tests only, nil otherwise. resolver looks up the names
// deliveries connect to (nil is the system's): a test sets a DNS server that
// answers differently each time. confine runs on each address the guard let
// through, just before connect: a test refuses there every address off this
// machine, so that a delivery the guard allows never leaves it.
var (
	resolver *net.Resolver
	confine  func(address string) error
)

// blockedError is a connection refused before it was made (no packet left)
// because of where it would have gone.
type blockedError struct {
	addr   netip.Addr
	reason string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s", e.addr, e.reason)
}

// refuseBlocked is the dialer's Control: it runs after the address is
// resolved and before connect(2).
func refuseBlocked(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address", host)
	}
	if reason := blockedReason(addr); reason != "" {
		return &blockedError{addr: addr, reason: reason}
	}
	return nil
}

// blockedPrefixes are special-purpose ranges (RFC 6890 and successors)
// that the netip.Addr predicates do not cover.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" address`},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"}, // and 255.255.255.255
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address"},
	{netip.MustParsePrefix("100::/64"), "discard-only address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // the IPv4 address in the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // the IPv4 address in bits 16–47
)

// blockedReason says why a webhook must not connect to addr, or "" if it
// may: loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// where cloud metadata services answer, and fe80::/10), unspecified,
// multicast, carrier-grade NAT and other special ranges, in any of their
// IPv6 disguises.
func blockedReason(addr netip.Addr) string {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	}
	switch {
	case addr.IsUnspecified():
		return "unspecified address"
	case addr.IsLoopback():
		return "loopback address"
	case addr.IsPrivate():
		return "private network address"
	case addr.IsLinkLocalUnicast():
		return "link-local address"
	case addr.IsMulticast():
		return "multicast address"
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(addr) {
			return p.reason
		}
	}
	var v4 [4]byte
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		copy(v4[:], b[12:16])
	case sixToFour.Contains(addr):
		copy(v4[:], b[2:6])
	default:
		return ""
	}
	if reason := blockedReason(netip.AddrFrom4(v4)); reason != "" {
		return reason + " (" + netip.AddrFrom4(v4).String() + ", embedded in IPv6)"
	}
	return ""
}
