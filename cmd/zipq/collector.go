package main

import (
	"context"

	"github.com/oklog/run"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/spanmetrics"
)

// runCollector consumes and stores; SREs scale by running more of these on
// the same queue (competing consumers). It serves /health and /metrics.
func runCollector(ctx context.Context, args []string) error {
	return runIngest(ctx, "collector", args, false)
}

// runIngest wires a process that consumes the span queue; withAPI adds the
// Zipkin API and HTTP ingest (zipq serve).
func runIngest(ctx context.Context, name string, args []string, withAPI bool) error {
	cc, qc, ic, mc := collector.DefaultConfig(), query.DefaultConfig(), ingest.DefaultConfig(), spanmetrics.DefaultConfig()
	var selfTrace bool
	ac, tf, ten := auth.DefaultConfig(), tlsFiles{}, tenancy{}
	log, st, db, err := bootServer(name, args, func(s *settings) {
		bindRabbit(s, &cc.Broker)
		bindCollector(s, &cc)
		bindIngest(s, &ic, withAPI)
		bindHTTP(s, &qc)
		bindAccess(s, &ac, &tf)
		bindTenants(s, &ten, &cc.Broker)
		if withAPI {
			bindAPI(s, &qc)
		}
		bindSelfTracing(s, &selfTrace)
		bindSpanMetrics(s, &mc)
	})
	if err != nil {
		return err
	}
	defer st.Close() // after the group: the collector's last commit needs the pool
	st.SetTenantRetention(ten.retention())
	if err := st.SetTenantBudgets(ten.budgets()); err != nil {
		return err
	}
	st.SetTraceLimits(ten.traceLimits())
	ac.Tenants = ten.names()
	pub := broker.NewPublisher(cc.Broker)
	defer pub.Close()
	self, err := newSelfTracing(selfTrace, pub, log)
	if err != nil {
		return err
	}

	reg := newRegistry()
	reg.MustRegister(usageMetrics(st)...) // measured by this process's maintenance
	reg.MustRegister(thinMetrics(st))     // counted as this process thins days
	listens := []string{qc.Addr}
	if withAPI {
		listens = append(listens, ic.OTLPHTTPAddr, ic.OTLPGRPCAddr)
	}
	acc, err := newAccess(ac, tf, reg, log, listens...)
	if err != nil {
		return err
	}
	if mc.Enabled { // counted where spans are written and links made
		m := spanmetrics.New(ten.spanMetrics(mc))
		reg.MustRegister(m)
		st.SetObserver(m)
	}
	cs, checks, err := ten.collectors(cc, ic.Limits, self.writer(st), db, pub, reg, log)
	if err != nil {
		return err
	}
	opts := query.Options{
		Config: qc, Logger: log.With("component", "http"), Registerer: reg, Gatherer: reg, Version: version, Auth: acc.auth,
		Health:   append([]query.HealthCheck{postgresCheck(db), spanQueueCheck(pub, cc.Broker.Queue)}, checks...),
		Replayer: ten.replayer(cc.Broker),
	}
	var samples []func(context.Context) error
	var rcv *ingest.Receiver
	if withAPI {
		ipub, closePubs := ten.publisher(pub, cc.Broker)
		defer closePubs()
		rcv = ingest.New(ic, ipub, log.With("component", "ingest"), reg)
		rcv.Limit(ten.meters)
		apiOptions(&opts, rcv, st, db, self)
		samples = ten.monitor(&opts, cc.Broker, cs, reg)
		withUsage(&opts, st)
	}

	var g run.Group
	addSignals(&g, ctx) // first: a signal starts the shutdown
	acc.add(&g)         // tokens reloaded on SIGHUP
	for _, c := range cs {
		addCollector(&g, c, db) // stop consuming, commit and ack in-flight batches
	}
	// HTTP keeps serving /health while the collector drains.
	if err := addHTTP(&g, qc, acc, query.NewRouter(opts), log); err != nil {
		return err
	}
	if withAPI {
		if err := addOTLP(&g, rcv, ic, qc, acc, self, log); err != nil {
			return err
		}
	}
	self.add(&g) // flush zipq's own spans after the last request
	for _, sample := range samples {
		addBackground(&g, sample) // pipeline page samples
	}
	addBackground(&g, db.after(st.RunLinker))      // dependency links
	addBackground(&g, db.after(st.RunCompactor))   // multi-segment traces rewritten as one
	addBackground(&g, db.after(st.RunStats))       // service metrics folded to minutes and hours
	addBackground(&g, db.after(st.RunDicts))       // learned dictionaries, readable before anyone writes with them
	addBackground(&g, db.after(st.RunThinning))    // keep by value (ZIPQ_KEEP), once a day is due
	addBackground(&g, db.after(st.RunPacking))     // closed days' traces packed into blocks
	addBackground(&g, db.Run)                      // migrate once PostgreSQL answers
	addBackground(&g, db.after(st.RunMaintenance)) // partitions and retention; last to stop
	log.Info("zipq started", "command", name, "version", version, "queue", cc.Broker.Queue, "concurrency", cc.Concurrency, "tenants", len(ten.list))
	return runGroup(&g, log)
}
