package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/zipq/zipq/auth"
)

// runToken makes a random token and prints it with its ZIPQ_TOKENS_FILE
// line (a bcrypt hash: the file never holds the token itself).
func runToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("zipq token", flag.ContinueOnError)
	name := fs.String("name", "", "the token's name, for logs and metrics (required, unique in the file)")
	scopes := fs.String("scopes", "read", "comma-separated: read (APIs, UI, /metrics), write (ingest), admin (replay, discard, pipeline)")
	tenant := fs.String("tenant", "", "the one tenant the token acts for (empty: the tenant each request names in X-Scope-OrgID)")
	expires := fs.String("expires", "", "expiry as a date (2027-06-30, midnight UTC) or an RFC 3339 time; empty: never")
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost: each doubling of work is +1 (a check runs once per token and reload, then is cached)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := auth.ParseScopes(*scopes)
	if err != nil {
		return err
	}
	var exp time.Time
	if *expires != "" {
		if exp, err = auth.ParseExpiry(*expires); err != nil {
			return err
		}
	}
	secret, line, err := auth.NewToken(*name, s, *tenant, exp, *cost)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "# Append this line to ZIPQ_TOKENS_FILE, then: kill -HUP <zipq pid>\n")
	fmt.Println(line)
	fmt.Fprintf(os.Stderr, "# The token (shown once; give it to the client as Authorization: Bearer <token>):\n")
	fmt.Println(secret)
	return nil
}
