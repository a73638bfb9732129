package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/query"
)

// runQuery serves the API, HTTP ingest and UI only; scale it on CPU. It
// does not depend on the collector package: it publishes through broker.
func runQuery(ctx context.Context, args []string) error {
	bc, qc, ic := broker.DefaultConfig(), query.DefaultConfig(), ingest.DefaultConfig()
	var selfTrace bool
	ac, tf, ten := auth.DefaultConfig(), tlsFiles{}, tenancy{}
	log, st, db, err := bootServer("query", args, func(s *settings) {
		bindRabbit(s, &bc)
		bindIngest(s, &ic, true)
		bindHTTP(s, &qc)
		bindAccess(s, &ac, &tf)
		bindTenants(s, &ten, &bc)
		bindAPI(s, &qc)
		bindSelfTracing(s, &selfTrace)
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetTenantBudgets(ten.budgets()); err != nil { // the pipeline page shows them
		return err
	}
	ac.Tenants = ten.names()
	pub := broker.NewPublisher(bc)
	defer pub.Close()
	self, err := newSelfTracing(selfTrace, pub, log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	acc, err := newAccess(ac, tf, reg, log, qc.Addr, ic.OTLPHTTPAddr, ic.OTLPGRPCAddr)
	if err != nil {
		return err
	}
	opts := query.Options{
		Config: qc, Logger: log.With("component", "http"), Registerer: reg, Gatherer: reg, Version: version, Auth: acc.auth,
		Health: []query.HealthCheck{postgresCheck(db), {Name: "rabbitmq", Check: pub.Ping}, spanQueueCheck(pub, bc.Queue)},
	}
	ipub, closePubs := ten.publisher(pub, bc)
	defer closePubs()
	rcv := ingest.New(ic, ipub, log.With("component", "ingest"), reg)
	rcv.Limit(ten.meters)
	apiOptions(&opts, rcv, st, db, self)
	samples := ten.monitor(&opts, bc, nil, reg) // no collector here: rates from queue depth only
	withUsage(&opts, st)
	var g run.Group
	addSignals(&g, ctx)
	acc.add(&g)
	if err := addHTTP(&g, qc, acc, query.NewRouter(opts), log); err != nil {
		return err
	}
	if err := addOTLP(&g, rcv, ic, qc, acc, self, log); err != nil {
		return err
	}
	self.add(&g)
	for _, sample := range samples {
		addBackground(&g, sample)
	}
	addBackground(&g, db.Run)                // wait for the (replica's) schema
	addBackground(&g, db.after(st.RunDicts)) // learned dictionaries, to read what collectors write with them
	log.Info("zipq started", "command", "query", "version", version)
	return runGroup(&g, log)
}
