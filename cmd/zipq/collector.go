package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// runCollector consumes and stores; SREs scale by running more of these on
// the same queue (competing consumers). It serves /health and /metrics.
func runCollector(ctx context.Context, args []string) error {
	var (
		logLevel, logFormat, addr, token string
		cc                               collector.Config
		sc                               storage.Config
	)
	s := newSettings("collector")
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
	defer st.Close()

	reg := newRegistry()
	c, err := collector.New(cc, st, log.With("component", "collector"), reg)
	if err != nil {
		return err
	}
	h := query.NewRouter(query.Options{
		Logger: log.With("component", "http"), Registerer: reg, Gatherer: reg, Version: version,
		Health:     []query.HealthCheck{postgresCheck(st), collectorCheck(c)},
		AdminToken: token, Replayer: replayer{cc},
	})

	var g run.Group
	addSignals(&g, ctx) // first: a signal starts the shutdown
	addCollector(&g, c) // stop consuming, commit and ack in-flight batches
	if err := addHTTP(&g, addr, h, log); err != nil {
		return err
	}
	addMaintenance(&g, st)
	log.Info("zipq collector started", "version", version, "queue", cc.Queue, "concurrency", cc.Concurrency)
	return runGroup(&g, log)
}
