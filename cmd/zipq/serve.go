package main

import "context"

// runServe is the all-in-one process: collector, dependency linker, query
// API, HTTP ingest and UI.
func runServe(ctx context.Context, args []string) error {
	return runIngest(ctx, "serve", args, true)
}
