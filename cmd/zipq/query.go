package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/query"
)

// runQuery serves the API, HTTP ingest and UI only; scale it on CPU.
func runQuery(ctx context.Context, args []string) error {
	var hc httpConfig
	var ac apiConfig
	var cc collector.Config
	var selfTrace bool
	log, st, db, err := bootServer("query", args, func(s *settings) {
		bindRabbit(s, &cc)
		bindHTTP(s, &hc)
		bindAPI(s, &ac)
		bindSelfTracing(s, &selfTrace)
	})
	if err != nil {
		return err
	}
	defer st.Close()
	pub := collector.NewPublisher(cc)
	defer pub.Close()
	self, err := newSelfTracing(selfTrace, pub, log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	opts := query.Options{
		Logger: log.With("component", "http"), Registerer: reg, Gatherer: reg, Version: version,
		Health:     []query.HealthCheck{postgresCheck(db), {Name: "rabbitmq", Check: pub.Ping}, spanQueueCheck(pub, cc.WithDefaults().Queue)},
		AdminToken: hc.adminToken, Replayer: replayer{cc}, Pprof: hc.pprof,
	}
	apiOptions(&opts, ac, cc, st, db, pub, self)
	sample := monitor(&opts, cc, pub, nil) // no collector here: rates from queue depth only
	var g run.Group
	addSignals(&g, ctx)
	if err := addHTTP(&g, hc.addr, query.NewRouter(opts), log); err != nil {
		return err
	}
	self.add(&g)
	addBackground(&g, sample)
	addBackground(&g, db.Run) // wait for the (replica's) schema
	log.Info("zipq started", "command", "query", "version", version)
	return runGroup(&g, log)
}
