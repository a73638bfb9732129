package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/internal/certs"
)

// runInitSecrets makes what a first start on a network needs, once: a CA,
// a server certificate for the given hosts, and a tokens file with an
// ingest (write), a reader (read) and an admin token, whose secrets are
// printed this once. docker-compose.yml runs it before zipq; a directory
// that has a tokens file is left alone.
func runInitSecrets(_ context.Context, args []string) error {
	fset := flag.NewFlagSet("zipq init-secrets", flag.ContinueOnError)
	dir := fset.String("dir", "zipq-secrets", "directory to write ca.pem, server.pem, server.key and tokens into")
	hosts := fset.String("hosts", "localhost,127.0.0.1,::1", "comma-separated names and addresses the server certificate is for")
	days := fset.Int("days", 365, "validity of the certificates, in days")
	if err := fset.Parse(args); err != nil {
		return err
	}
	tokens := filepath.Join(*dir, "tokens")
	if _, err := os.Stat(tokens); err == nil {
		fmt.Printf("%s exists: nothing made (remove the directory's files to start over)\n", tokens)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	valid := time.Duration(*days) * 24 * time.Hour
	ca, err := certs.NewAuthority("zipq CA", valid)
	if err != nil {
		return err
	}
	cert, key, err := ca.Issue(strings.Split(*hosts, ",")[0], strings.Split(*hosts, ","), false, valid)
	if err != nil {
		return err
	}
	var lines, shown []string
	for _, t := range []struct {
		name   string
		scopes auth.Scope
	}{{"ingest", auth.Write}, {"reader", auth.Read}, {"admin", auth.Read | auth.Write | auth.Admin}} {
		secret, line, err := auth.NewToken(t.name, t.scopes, "", time.Time{}, bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		lines = append(lines, line)
		shown = append(shown, fmt.Sprintf("  %-7s (%s): %s", t.name, t.scopes, secret))
	}
	// The tokens file last: its presence marks the directory complete.
	for _, f := range []struct {
		name string
		data []byte
	}{{"ca.pem", ca.PEM}, {"server.pem", cert}, {"server.key", key},
		{"tokens", []byte("# name scopes tenant expires bcrypt-hash (zipq token makes more; kill -HUP zipq reloads)\n" + strings.Join(lines, "\n") + "\n")}} {
		if err := os.WriteFile(filepath.Join(*dir, f.name), f.data, 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("Made in %s: ca.pem (trust it in clients), server.pem and server.key (for %s), tokens.\n"+
		"The tokens, shown this once (only their bcrypt hashes are kept):\n%s\n", *dir, *hosts, strings.Join(shown, "\n"))
	return nil
}
