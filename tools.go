//go:build tools

// Package tools pins the code generators in go.mod, so `go generate ./...`
// reproduces the committed generated code with the same versions.
package tools

import (
	_ "entgo.io/ent/cmd/ent"
	_ "github.com/99designs/gqlgen"
)
