// Package migrations holds zipq's numbered goose SQL migrations, embedded so
// the binary and the tests migrate from the same files. schema.sql beside
// them is the schema they add up to (pg_dump of a freshly migrated
// schema), for reading; storage's TestSchemaFileIsCurrent keeps it so.
package migrations

import (
	"embed"
	"io/fs"
	"strconv"
	"strings"
)

// FS holds the numbered *.sql migrations.
//
//go:embed [0-9]*.sql
var FS embed.FS

// Latest is the highest version among the SQL migrations (a Go migration
// of a higher number must be counted by its caller).
func Latest() int64 {
	entries, _ := fs.ReadDir(FS, ".") // the embed's root: no error
	var latest int64
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(prefix, 10, 64); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}
