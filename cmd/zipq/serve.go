package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// runServe is the all-in-one process: collector, query API and UI.
func runServe(ctx context.Context, args []string) error {
	var (
		logLevel, logFormat, addr, token string
		cc                               collector.Config
		sc                               storage.Config
	)
	s := newSettings("serve")
	bindLog(s, &logLevel, &logFormat)
	bindRabbit(s, &cc)
	bindCollector(s, &cc)
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
	defer st.Close() // after the group: the collector's last commit needs the pool

	reg := newRegistry()
	c, err := collector.New(cc, st, log.With("component", "collector"), reg)
	if err != nil {
		return err
	}
	h := query.NewRouter(query.Options{
		Logger: log.With("component", "query"), Registerer: reg, Gatherer: reg, Version: version,
		Health:     []query.HealthCheck{postgresCheck(st), collectorCheck(c)},
		AdminToken: token, Replayer: replayer{cc},
	})

	var g run.Group
	addSignals(&g, ctx)                               // first: a signal starts the shutdown
	addCollector(&g, c)                               // stop consuming, commit and ack in-flight batches
	if err := addHTTP(&g, addr, h, log); err != nil { // serve /health while the collector drains
		return err
	}
	addMaintenance(&g, st) // partitions and retention; last to stop
	log.Info("zipq serve started", "version", version, "queue", cc.Queue)
	return runGroup(&g, log)
}
