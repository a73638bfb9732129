package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/query"
)

// runQuery serves the API and UI only; scale it on CPU.
func runQuery(ctx context.Context, args []string) error {
	var addr, token string
	log, st, err := boot(ctx, "query", args, func(s *settings) { bindHTTP(s, &addr, &token) })
	if err != nil {
		return err
	}
	defer st.Close()
	reg := newRegistry()
	h := query.NewRouter(query.Options{
		Logger: log.With("component", "query"), Registerer: reg, Gatherer: reg, Version: version,
		Health: []query.HealthCheck{postgresCheck(st)},
	})
	var g run.Group
	addSignals(&g, ctx)
	if err := addHTTP(&g, addr, h, log); err != nil {
		return err
	}
	log.Info("zipq started", "command", "query", "version", version)
	return runGroup(&g, log)
}
