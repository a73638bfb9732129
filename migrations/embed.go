// Package migrations holds zipq's numbered goose SQL migrations, embedded so
// the binary and the tests migrate from the same files.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
