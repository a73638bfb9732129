package main

import "context"

// runServe is the all-in-one process: collector, query API and UI. Until
// the Zipkin API lands (issue 3) it runs what `zipq collector` runs.
func runServe(ctx context.Context, args []string) error {
	return runIngest(ctx, "serve", args)
}
