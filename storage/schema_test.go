package storage_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/zipq/zipq/internal/testenv"
	"github.com/zipq/zipq/storage"
)

const schemaFile = "../migrations/schema.sql"

// TestSchemaFileIsCurrent: migrations/schema.sql is the schema the
// migrations add up to — pg_dump --schema-only of a freshly migrated
// schema, named zipq — so a reader sees every table, index, function and
// comment in one file. ZIPQ_UPDATE_SCHEMA=1 rewrites it.
func TestSchemaFileIsCurrent(t *testing.T) {
	t.Parallel()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal("pg_dump not found: it comes with PostgreSQL's client (scripts/services.sh installs it)")
	}
	dsn := testenv.EmptySchema(t)
	st, err := storage.Open(context.Background(), storage.Config{URL: dsn, MaxConns: 2}, nil)
	testenv.Must(t, err)
	defer st.Close()
	testenv.Must(t, st.Migrate(context.Background()))
	u, err := url.Parse(dsn)
	testenv.Must(t, err)
	schema := u.Query().Get("search_path")
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	out, err := exec.Command(pgDump, "--schema-only", "--no-owner", "--no-privileges", "--schema="+schema, u.String()).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	ver, err := exec.Command(pgDump, "--version").Output()
	testenv.Must(t, err)
	major := pgDumpMajor.FindString(string(ver))
	got := normalizeDump(string(out), schema, major)
	if os.Getenv("ZIPQ_UPDATE_SCHEMA") != "" {
		testenv.Must(t, os.WriteFile(schemaFile, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(schemaFile)
	testenv.Must(t, err)
	// pg_dump's layout changes between major versions: the file is
	// compared by a pg_dump of the version that wrote it (CI's).
	if m := dumpedBy.FindStringSubmatch(string(want)); m == nil || m[1] != major {
		t.Skipf("%s was written by another pg_dump major version than %s", schemaFile, major)
	}
	if string(want) != got {
		t.Fatalf("%s is not the schema the migrations make: rewrite it with ZIPQ_UPDATE_SCHEMA=1 go test -run TestSchemaFileIsCurrent ./storage", schemaFile)
	}
}

var (
	pgDumpMajor = regexp.MustCompile(`\b\d+\b`)
	dumpedBy    = regexp.MustCompile(`(?m)^-- pg_dump (\d+)$`)
	dumpNoise   = regexp.MustCompile(`(?m)^(--.*|SET .*|SELECT pg_catalog\.set_config.*|\\(un)?restrict .*)\n`)
	blankRuns   = regexp.MustCompile(`\n{3,}`)
)

// normalizeDump keeps what describes the schema: no server version, session
// settings or pg_dump's per-run keys, and the test's schema named zipq.
func normalizeDump(dump, schema, major string) string {
	dump = dumpNoise.ReplaceAllString(dump, "")
	dump = strings.ReplaceAll(dump, schema, "zipq")
	dump = blankRuns.ReplaceAllString(dump, "\n\n")
	return "-- The schema zipq's migrations add up to, generated: do not edit.\n" +
		"-- ZIPQ_UPDATE_SCHEMA=1 go test -run TestSchemaFileIsCurrent ./storage rewrites it.\n" +
		"-- pg_dump " + major + "\n\n" +
		strings.TrimSpace(dump) + "\n"
}
