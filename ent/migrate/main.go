//go:build ignore

// main.go writes a versioned migration (Atlas format) for each database
// engine from the difference between the Ent schema and the migrations
// already in ent/migrate/migrations. Run it after changing ent/schema and
// regenerating:
//
//	go generate ./... && go run ./ent/migrate/main.go <name>
//
// The PostgreSQL migration is planned against a scratch schema on
// DEV_POSTGRES_URL (default: the local server's database "test").
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	"github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/safedelete/uploads/ent/migrate"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run ./ent/migrate/main.go <name>")
	}
	name := os.Args[1]
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "migrations")
	ctx := context.Background()

	if err := diff(ctx, filepath.Join(root, "sqlite"), dialect.SQLite, "sqlite://dev?mode=memory&_fk=1", name); err != nil {
		log.Fatalf("sqlite: %v", err)
	}

	sql.Register("postgres", stdlib.GetDefaultDriver())
	devURL := os.Getenv("DEV_POSTGRES_URL")
	if devURL == "" {
		devURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	scratch, cleanup, err := scratchSchema(devURL)
	if err != nil {
		log.Fatalf("postgres dev database: %v", err)
	}
	defer cleanup()
	if err := diff(ctx, filepath.Join(root, "postgres"), dialect.Postgres, scratch, name); err != nil {
		log.Fatalf("postgres: %v", err)
	}
}

func diff(ctx context.Context, path, d, devURL, name string) error {
	dir, err := atlas.NewLocalDir(path)
	if err != nil {
		return err
	}
	return migrate.NamedDiff(ctx, devURL, name,
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(d),
		schema.WithFormatter(atlas.DefaultFormatter),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
	)
}

// scratchSchema creates an empty schema to plan in, and returns a URL to it.
func scratchSchema(base string) (string, func(), error) {
	db, err := sql.Open("postgres", base)
	if err != nil {
		return "", nil, err
	}
	const schemaName = "atlas_dev_uploads"
	if _, err := db.Exec(fmt.Sprintf("DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s", schemaName)); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schemaName)
	u.RawQuery = q.Encode()
	return u.String(), func() { db.Exec("DROP SCHEMA " + schemaName + " CASCADE"); db.Close() }, nil
}
