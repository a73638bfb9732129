// Command zipq is a Zipkin-compatible tracing backend: spans arrive through
// RabbitMQ, collectors write them to PostgreSQL in batches, and the query
// API and UI read them back. Each subcommand's file builds its parts and
// runs them in one run group; this file only dispatches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
)

var version = "dev" // set with -ldflags "-X main.version=..."

var commands = map[string]func(ctx context.Context, args []string) error{
	"serve":        runServe,
	"collector":    runCollector,
	"query":        runQuery,
	"migrate":      runMigrate,
	"replay":       runReplay,
	"config":       runConfig,
	"token":        runToken,
	"init-secrets": runInitSecrets,
	"usage":        runUsage,
}

const usage = `zipq: a Zipkin-compatible tracing backend on RabbitMQ and PostgreSQL.

Usage: zipq [command] [flags]

Commands:
  serve      collector + query API + UI in one process (the default)
  collector  consume spans from RabbitMQ and store them
  query      serve the Zipkin API v2 and the UI
  migrate    apply database migrations and create partitions, then exit
  replay     move parked messages back to the span queue
  config     print every setting with its flag, environment variable and default
  token      make a bearer token and its line for ZIPQ_TOKENS_FILE
  init-secrets  make a CA, a server certificate and three tokens, once (docker-compose.yml)
  usage      what the disk holds: the schema's bytes, and whose spans take them

Run 'zipq <command> -h' for a command's flags.
`

func main() {
	args := os.Args[1:]
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "zipq: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	if err := cmd(context.Background(), args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "zipq %s: %v\n", name, err)
		os.Exit(1)
	}
}
