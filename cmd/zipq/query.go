package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// runQuery serves the API and UI only; scale it on CPU.
func runQuery(ctx context.Context, args []string) error {
	var (
		logLevel, logFormat, addr, token string
		sc                               storage.Config
	)
	s := newSettings("query")
	bindLog(s, &logLevel, &logFormat)
	bindPostgres(s, &sc)
	bindHTTP(s, &addr, &token)
	if err := s.parse(args); err != nil {
		return err
	}
	log, err := newLogger(logLevel, logFormat)
	if err != nil {
		return err
	}
	startCtx, cancel := startupContext(ctx)
	defer cancel()
	st, err := openStore(startCtx, sc, log)
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
	log.Info("zipq query started", "version", version)
	return runGroup(&g, log)
}
