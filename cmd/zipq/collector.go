package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/query"
)

// runCollector consumes and stores; SREs scale by running more of these on
// the same queue (competing consumers). It serves /health and /metrics.
func runCollector(ctx context.Context, args []string) error {
	return runIngest(ctx, "collector", args)
}

// runIngest wires a process that consumes the span queue.
func runIngest(ctx context.Context, name string, args []string) error {
	var addr, token string
	var cc collector.Config
	log, st, err := boot(ctx, name, args, func(s *settings) {
		bindRabbit(s, &cc)
		bindCollector(s, &cc)
		bindHTTP(s, &addr, &token)
	})
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
		Logger: log.With("component", "http"), Registerer: reg, Gatherer: reg, Version: version,
		Health:     []query.HealthCheck{postgresCheck(st), collectorCheck(c)},
		AdminToken: token, Replayer: replayer{cc},
	})

	var g run.Group
	addSignals(&g, ctx)                               // first: a signal starts the shutdown
	addCollector(&g, c)                               // stop consuming, commit and ack in-flight batches
	if err := addHTTP(&g, addr, h, log); err != nil { // keeps serving /health while the collector drains
		return err
	}
	addMaintenance(&g, st) // partitions and retention; last to stop
	log.Info("zipq started", "command", name, "version", version, "queue", cc.Queue, "concurrency", cc.Concurrency)
	return runGroup(&g, log)
}
