package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/ent/upload"
	"github.com/safedelete/uploads/ent/user"
	"github.com/safedelete/uploads/internal/app"
	"github.com/safedelete/uploads/internal/config"
)

// TestUsersDeleteRefusesHeldUser: users delete of a user with a hold in
// force changes nothing, names the hold and exits 3; with --except-held
// everything else goes and the user stays; released, the user can go.
func TestUsersDeleteRefusesHeldUser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serveFor(t, dir, freeAddr(t), func() {}) // seeds a demo user with two uploads
	open := func() *ent.Client {
		client, err := app.OpenDatabase(context.Background(), &config.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		return client
	}
	client := open()
	ctx := context.Background()
	demo := client.User.Query().OnlyX(ctx)
	uploads := client.Upload.Query().Order(upload.ByID()).AllX(ctx)
	held := uploads[0]

	out, _, err := cli(t, dir, "holds", "place", "--upload", held.ID, "--reason", "case 7", "--until", "2999-06-30", "--json")
	if err != nil {
		t.Fatalf("holds place: %v", err)
	}
	var placed struct {
		HoldID string `json:"hold_id"`
		Until  string `json:"until"`
		Active bool   `json:"active"`
	}
	if err := json.Unmarshal([]byte(out), &placed); err != nil || !placed.Active || placed.Until != "2999-07-01T00:00:00Z" {
		t.Fatalf("holds place printed %q (%v)", out, err)
	}

	_, _, err = cli(t, dir, "users", "delete", "--id", demo.ID)
	if status := exitStatus(err, io.Discard); status != 3 || !strings.Contains(err.Error(), placed.HoldID) {
		t.Fatalf("users delete of a held user: exit %d, %v; want 3 naming %s", status, err, placed.HoldID)
	}
	if n := client.Upload.Query().CountX(ctx); n != 2 {
		t.Fatalf("the refused users delete left %d of 2 uploads", n)
	}

	if _, _, err := cli(t, dir, "users", "delete", "--id", demo.ID, "--except-held", "--json"); err != nil {
		t.Fatalf("users delete --except-held: %v", err)
	}
	left := client.Upload.Query().IDsX(ctx)
	if len(left) != 1 || left[0] != held.ID || !client.User.Query().Where(user.ID(demo.ID)).ExistX(ctx) {
		t.Fatalf("after users delete --except-held: uploads %v; want only the held one, and the user kept", left)
	}

	out, _, err = cli(t, dir, "holds", "list", "--user", demo.ID, "--json")
	if err != nil || !strings.Contains(out, placed.HoldID) {
		t.Fatalf("holds list: %q %v", out, err)
	}
	if _, _, err := cli(t, dir, "holds", "release", "--id", placed.HoldID); err != nil {
		t.Fatalf("holds release: %v", err)
	}
	if _, _, err := cli(t, dir, "holds", "release", "--id", placed.HoldID); err == nil || !strings.Contains(err.Error(), "released already") {
		t.Errorf("releasing twice: %v", err)
	}
	if _, _, err := cli(t, dir, "users", "delete", "--id", demo.ID); err != nil {
		t.Fatalf("users delete after the release: %v", err)
	}
	if client.User.Query().Where(user.ID(demo.ID)).ExistX(ctx) || client.Upload.Query().ExistX(ctx) {
		t.Fatal("the user or an upload outlived users delete after the release")
	}
}

// TestHoldsPlaceBadInput: each bad input is a clear error and places nothing.
func TestHoldsPlaceBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"holds", "place", "--reason", "x"},
		{"holds", "place", "--upload", "upl_00000000000000000000000000000000", "--user", "usr_00000000000000000000000000000000", "--reason", "x"},
		{"holds", "place", "--upload", "upl_00000000000000000000000000000000"},
		{"holds", "place", "--user", "usr_00000000000000000000000000000000", "--reason", "x", "--until", "next week"},
		{"holds", "place", "--user", "usr_00000000000000000000000000000000", "--reason", "x", "--until", "2001-01-01"},
		{"holds", "place", "--user", "usr_00000000000000000000000000000000", "--reason", "x"},
		{"holds", "place", "--upload", "upl_00000000000000000000000000000000", "--reason", "x"},
		{"holds", "release", "--id", "hold_00000000000000000000000000000000"},
	} {
		if _, _, err := cli(t, dir, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if out, _, err := cli(t, dir, "holds", "list"); err != nil || out != "No holds.\n" {
		t.Errorf("holds list after bad input: %q %v", out, err)
	}
}
