package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/safedelete/uploads/internal/admin"
	"github.com/safedelete/uploads/internal/apikey"
	"github.com/safedelete/uploads/internal/scope"
)

// keyFlags are the flags of a new API key, --scope and --expires, with
// note added to their help.
func keyFlags(cmd *cobra.Command, grant *apikey.Grant, note string) {
	cmd.Flags().Var((*scopesValue)(&grant.Scopes), "scope",
		"the key's scopes, comma- or space-separated (default: every scope, including later ones)"+note)
	cmd.Flags().Var(&expiresValue{at: &grant.ExpiresAt}, "expires",
		"when the key stops working: days (90d), a duration (36h), a date (2027-01-31: through that day, UTC) or an RFC 3339 time (default: never)"+note)
}

// scopesValue is --scope: scope names, comma- or space-separated; given
// again, it adds more.
type scopesValue scope.Set

func (v *scopesValue) String() string { return scope.Set(*v).String() }
func (v *scopesValue) Type() string   { return "scopes" }
func (v *scopesValue) Set(s string) error {
	set, err := scope.Parse(s)
	if err != nil {
		return err
	}
	*v |= scopesValue(set)
	return nil
}

// expiresValue is --expires, read when it is parsed: a time in the future.
type expiresValue struct {
	at   *time.Time
	text string
}

func (v *expiresValue) String() string { return v.text }
func (v *expiresValue) Type() string   { return "when" }
func (v *expiresValue) Set(s string) error {
	at, err := admin.ParseExpiry(s, time.Now())
	if err != nil {
		return err
	}
	*v.at, v.text = at, s
	return nil
}
