// Package ent holds the Ent schema (ent/schema) and the code generated from it.
package ent

// Order matters: entc writes graph/ent.graphqls, which gqlgen then reads.
//go:generate go run -mod=mod entc.go
//go:generate sh -c "cd .. && go run -mod=mod github.com/99designs/gqlgen generate"
