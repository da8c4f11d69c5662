// Package scope names what a credential may do. Every API key and every
// access token carries a set of scopes; each GraphQL field and the REST
// delete need one, decided before anything is looked up.
package scope

import (
	"fmt"
	"strings"
)

// Scope is one permission.
type Scope uint8

// The scopes, in the order they are listed.
const (
	UploadsRead    Scope = 1 << iota // queries of uploads and the trash
	UploadsWrite                     // uploadFile, restoreUpload
	UploadsDelete                    // every delete, batch, filter and purge
	WebhooksManage                   // webhook endpoints and their deliveries
	AuditRead                        // the audit trail
	HoldsManage                      // placing and releasing legal holds on one's own uploads
)

var names = []struct {
	scope Scope
	name  string
}{
	{UploadsRead, "uploads:read"},
	{UploadsWrite, "uploads:write"},
	{UploadsDelete, "uploads:delete"},
	{WebhooksManage, "webhooks:manage"},
	{AuditRead, "audit:read"},
	{HoldsManage, "holds:manage"},
}

// Set is a set of scopes.
type Set uint8

// All is every scope: what a key made without --scope has.
const All = Set(UploadsRead | UploadsWrite | UploadsDelete | WebhooksManage | AuditRead | HoldsManage)

// DefaultForTokens is what an access token gets when its scope and scp
// claims name none of this service's scopes (AUTH_DEFAULT_SCOPES' default):
// everything a person does with their own uploads, not webhooks.
const DefaultForTokens = Set(UploadsRead | UploadsWrite | UploadsDelete | AuditRead)

// String is the scope's name, such as "uploads:delete".
func (s Scope) String() string {
	for _, n := range names {
		if n.scope == s {
			return n.name
		}
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// Has reports whether the set holds s.
func (set Set) Has(s Scope) bool { return set&Set(s) != 0 }

// Covers reports whether set has every scope of other.
func (set Set) Covers(other Set) bool { return set&other == other }

// Names lists the set's scopes by name, in the order of Known.
func (set Set) Names() []string {
	list := []string{}
	for _, n := range names {
		if set.Has(n.scope) {
			list = append(list, n.name)
		}
	}
	return list
}

// String is the set's names, space-separated (as OAuth writes scopes).
func (set Set) String() string { return strings.Join(set.Names(), " ") }

// Known lists every scope name.
func Known() []string { return All.Names() }

// Lookup returns the scope named name.
func Lookup(name string) (Scope, bool) {
	for _, n := range names {
		if n.name == name {
			return n.scope, true
		}
	}
	return 0, false
}

// Parse reads a list of scope names separated by commas or white space.
// Every name must be known, and the list must not be empty.
func Parse(list string) (Set, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	var set Set
	for _, f := range fields {
		s, ok := Lookup(f)
		if !ok {
			return 0, fmt.Errorf("unknown scope %q (known: %s)", f, strings.Join(Known(), ", "))
		}
		set |= Set(s)
	}
	if set == 0 {
		return 0, fmt.Errorf("no scope given (known: %s)", strings.Join(Known(), ", "))
	}
	return set, nil
}

// FromNames is the set of the known scopes among names; others are ignored
// (an access token names scopes of other services too).
func FromNames(list []string) Set {
	var set Set
	for _, name := range list {
		if s, ok := Lookup(name); ok {
			set |= Set(s)
		}
	}
	return set
}
