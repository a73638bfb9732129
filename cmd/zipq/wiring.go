package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/run"
	zipkingo "github.com/openzipkin/zipkin-go"
	zipkingrpc "github.com/openzipkin/zipkin-go/middleware/grpc"
	zipkinhttp "github.com/openzipkin/zipkin-go/middleware/http"
	"github.com/openzipkin/zipkin-go/model"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/internal/certs"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/spanmetrics"
	"github.com/zipq/zipq/storage"
	"github.com/zipq/zipq/web"
	"github.com/zipq/zipq/zipkin"
)

// Compile-time checks that the store satisfies the interfaces its users
// declare (kept here so storage never imports them).
var (
	_ collector.SpanWriter       = (*storage.Store)(nil)
	_ collector.Preparer         = (*storage.Store)(nil)
	_ collector.RedeliveryWriter = (*storage.Store)(nil)
	_ query.SpanReader           = (*storage.Store)(nil)
	_ query.TraceFinder          = (*storage.Store)(nil)
	_ query.StatsReader          = (*storage.Store)(nil)
	_ query.TempoModel           = ingest.TraceQLModel{}
	_ ingest.Publisher           = (*broker.Publisher)(nil)
	_ collector.MessageDecoder   = ingest.Limits{}
	_ broker.Throughput          = (*collector.Collector)(nil)
)

// apiOptions adds the Zipkin and Tempo APIs and HTTP ingest (rcv) to a
// router's options.
func apiOptions(o *query.Options, rcv *ingest.Receiver, st *storage.Store, db *database, self selfTracing) {
	o.Reader, o.ReaderReady, o.Ingest = st, db.Ready, rcv.ZipkinHandler()
	o.Finder, o.Tempo, o.Stats, o.Thinned = st, ingest.TraceQLModel{}, st, st
	o.AutocompleteKeys = st.AutocompleteKeys()
	o.Tracer = self.tracer
	o.Assets = web.Handler()
}

// tenancy is the installation's tenants: the default one, always, on
// RABBIT_QUEUE, and those of ZIPQ_TENANTS_FILE, each with a span queue of
// its own (and its parking queue beside it).
type tenancy struct {
	list   []tenant.Tenant // the default tenant first
	meters *tenant.Meters
}

// loadTenancy reads the tenants file (if any) for span queue bc.Queue.
func loadTenancy(file string, bc broker.Config) (tenancy, error) {
	queue := bc.WithDefaults().Queue
	list := []tenant.Tenant{{Name: tenant.Default, Queue: queue}}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return tenancy{}, fmt.Errorf("tenants file: %w", err)
		}
		defer f.Close()
		table, err := tenant.ParseTable(f, queue)
		if err != nil {
			return tenancy{}, fmt.Errorf("tenants file %s: %w", file, err)
		}
		for _, t := range table {
			if t.Name == tenant.Default {
				list[0] = t
			} else {
				list = append(list, t)
			}
		}
	}
	// One queue holds one tenant's spans: no tenant's queue may be
	// another's span, parking or poison queue on the same broker.
	owner := map[string]string{}
	t := tenancy{list: list}
	for _, x := range list {
		q := t.broker(bc, x).WithDefaults()
		for _, name := range []string{q.Queue, q.ParkedQueue, q.PoisonQueue()} {
			name = q.URL + " " + name
			if other, taken := owner[name]; taken {
				return tenancy{}, fmt.Errorf("tenants file %s: queue %q is tenant %q's and %q's", file, name, other, x.Name)
			}
			owner[name] = x.Name
		}
	}
	t.meters = tenant.NewMeters(list)
	return t, nil
}

func (t tenancy) multi() bool { return len(t.list) > 1 }

// names are the tenants served besides the default one.
func (t tenancy) names() []string {
	var out []string
	for _, x := range t.list[1:] {
		out = append(out, x.Name)
	}
	return out
}

// perTenant is one setting of every tenant that has it (not zero), by
// tenant name.
func perTenant[V comparable](t tenancy, setting func(tenant.Tenant) V) map[string]V {
	var zero V
	out := map[string]V{}
	for _, x := range t.list {
		if v := setting(x); v != zero {
			out[x.Name] = v
		}
	}
	return out
}

// spanMetrics is mc for the tenants: series labelled with their tenant
// when there are several, each with its own bound if it has one.
func (t tenancy) spanMetrics(mc spanmetrics.Config) spanmetrics.Config {
	mc.Tenanted = t.multi()
	mc.MaxSeriesOf = perTenant(t, func(x tenant.Tenant) int { return x.MaxSeries })
	return mc
}

// traceLimits is each tenant's largest trace, where it has one.
func (t tenancy) traceLimits() map[string]int {
	return perTenant(t, func(x tenant.Tenant) int { return x.MaxTraceSpans })
}

// retention is each tenant's own retention, where it has one.
func (t tenancy) retention() map[string]time.Duration {
	return perTenant(t, func(x tenant.Tenant) time.Duration { return x.Retention })
}

// budgets is each tenant's byte budget, where it has one.
func (t tenancy) budgets() map[string]int64 {
	return perTenant(t, func(x tenant.Tenant) int64 { return x.RetentionBytes })
}

// broker is bc for tenant x's span queue, on its own broker URI if it
// has one (then through that URI's host alone: RABBIT_ADDRESSES are
// RABBIT_URI's nodes): the default tenant's parking queue is
// RABBIT_PARKED_QUEUE, the others' <queue>.parked.
func (t tenancy) broker(bc broker.Config, x tenant.Tenant) broker.Config {
	if x.Name != tenant.Default {
		bc.Queue, bc.ParkedQueue = x.Queue, ""
	}
	if x.URI != "" {
		bc.URL, bc.Addresses = x.URI, nil
	}
	return bc
}

// brokers is every tenant's broker config (broker), by tenant name.
func (t tenancy) brokers(bc broker.Config) map[string]broker.Config {
	cfgs := make(map[string]broker.Config, len(t.list))
	for _, x := range t.list {
		cfgs[x.Name] = t.broker(bc, x)
	}
	return cfgs
}

// registerer labels one tenant's metrics with it, when there are several
// (every series of a name then has the label, as Prometheus requires).
func (t tenancy) registerer(reg prometheus.Registerer, name string) prometheus.Registerer {
	if !t.multi() {
		return reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"tenant": name}, reg)
}

// checkName is a health check's name for tenant name: the plain name for
// the default tenant, name:tenant for the others.
func (t tenancy) checkName(check, name string) string {
	if name == tenant.Default {
		return check
	}
	return check + ":" + name
}

// collectors makes one collector per tenant, consuming its queue as that
// tenant at most at its ingest limit, and their health checks.
func (t tenancy) collectors(cc collector.Config, dec collector.MessageDecoder, w collector.SpanWriter, db *database,
	pub *broker.Publisher, reg prometheus.Registerer, log *slog.Logger) ([]*collector.Collector, []query.HealthCheck, error) {
	var cs []*collector.Collector
	var checks []query.HealthCheck
	for _, x := range t.list {
		cfg := cc
		cfg.Broker, cfg.Tenant = t.broker(cc.Broker, x), x.Name
		c, err := collector.New(cfg, dec, w, log.With("component", "collector", "tenant", x.Name), t.registerer(reg, x.Name))
		if err != nil {
			return nil, nil, err
		}
		c.SetThrottle(t.meters)
		cs = append(cs, c)
		rc, wc := collectorCheck(c, db, pub), writerCheck(c)
		rc.Name, wc.Name = t.checkName(rc.Name, x.Name), t.checkName(wc.Name, x.Name)
		checks = append(checks, rc, wc)
	}
	return cs, checks, nil
}

// publisher is what HTTP and OTLP ingest publish through: pub, or with
// several tenants each request's tenant's queue.
func (t tenancy) publisher(pub *broker.Publisher, bc broker.Config) (ingest.Publisher, func()) {
	if !t.multi() {
		return pub, func() {}
	}
	tp := broker.NewTenantPublisher(t.brokers(bc))
	return tp, tp.Close
}

// monitor serves the UI's pipeline page, replay and discard from o, each
// for the tenant the request acts for, and returns the sampling loops to
// run; local has this process's collectors (none for zipq query).
func (t tenancy) monitor(o *query.Options, bc broker.Config, local []*collector.Collector, reg prometheus.Registerer) []func(context.Context) error {
	mons := map[string]*broker.Monitor{}
	cfgs := t.brokers(bc)
	limits := map[string]tenant.Limits{}
	var loops []func(context.Context) error
	for i, x := range t.list {
		var th broker.Throughput
		if i < len(local) {
			th = local[i]
		}
		limits[x.Name] = x.Limits
		mons[x.Name] = broker.NewMonitor(cfgs[x.Name], th, 2*time.Second, t.registerer(reg, x.Name))
		loops = append(loops, mons[x.Name].Run)
	}
	of := func(ctx context.Context) *broker.Monitor { return mons[tenant.From(ctx)] } // auth admits only these tenants
	o.Pipeline = func(ctx context.Context, peek bool) (any, error) {
		s, err := of(ctx).Snapshot(ctx, peek)
		if err != nil {
			return nil, err
		}
		l := limits[tenant.From(ctx)]
		s.Tenant, s.LimitSpansPerSecond, s.LimitBytesPerSecond = tenant.From(ctx), l.SpansPerSecond, l.BytesPerSecond
		s.RetentionHours, s.MaxTraceSpans = l.Retention.Hours(), l.MaxTraceSpans
		return s, nil
	}
	o.Discard = func(ctx context.Context, id string) (int, error) { return of(ctx).Discard(ctx, id) }
	o.Replayer = t.replayer(bc)
	return loops
}

// withUsage adds to the pipeline page what the store takes on disk,
// measured at each look (a catalog query).
func withUsage(o *query.Options, st *storage.Store) {
	pipeline := o.Pipeline
	o.Pipeline = func(ctx context.Context, peek bool) (any, error) {
		v, err := pipeline(ctx, peek)
		s, ok := v.(broker.Snapshot)
		if err != nil || !ok {
			return v, err
		}
		u, err := st.Usage(ctx)
		if err != nil {
			return s, nil // the queue's figures still stand; /health reports PostgreSQL
		}
		s.StorageBytes, s.StorageBudgetBytes, s.OverBudget = u.Bytes, u.Budget, u.OverBudget
		s.Dictionary, s.DictionaryGain = int(u.Dictionary), u.DictionaryGain
		if !u.OldestDay.IsZero() {
			s.OldestDay = u.OldestDay.Format(time.DateOnly)
		}
		if t, ok := tenantUsage(u, tenant.From(ctx)); ok && (len(u.Tenants) > 1 || t.Budget > 0) {
			s.TenantBytes, s.TenantBudgetBytes, s.TenantOverBudget = t.Bytes, t.Budget, t.OverBudget
			s.TenantOldestDay = t.OldestDay.Format(time.DateOnly)
		}
		return s, nil
	}
}

// tenantUsage is the named tenant's part of u.
func tenantUsage(u storage.Usage, name string) (storage.TenantUsage, bool) {
	i := slices.IndexFunc(u.Tenants, func(t storage.TenantUsage) bool { return t.Tenant == name })
	if i < 0 {
		return storage.TenantUsage{}, false
	}
	return u.Tenants[i], true
}

// usageMetrics are the bytes the store takes, its budget and the oldest
// day kept, as this process's last maintenance round measured them.
func usageMetrics(st *storage.Store) []prometheus.Collector {
	gauge := func(name, help string, f func(storage.Usage) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(st.LastUsage()) })
	}
	return []prometheus.Collector{
		tenantUsageMetrics{st},
		gauge("zipq_storage_bytes", "Bytes the schema takes (tables, indexes, TOAST), at the last maintenance round.",
			func(u storage.Usage) float64 { return float64(u.Bytes) }),
		gauge("zipq_storage_budget_bytes", "ZIPQ_RETENTION_BYTES; 0: no budget.",
			func(u storage.Usage) float64 { return float64(u.Budget) }),
		gauge("zipq_storage_oldest_day_timestamp_seconds", "Start (UTC) of the oldest day of spans kept; 0: none.",
			func(u storage.Usage) float64 {
				if u.OldestDay.IsZero() {
					return 0
				}
				return float64(u.OldestDay.Unix())
			}),
	}
}

// tenantUsageMetrics are each tenant's share of the days of spans, its
// budget and its oldest day kept, as this process's last maintenance
// round measured them (only tenants with spans kept are listed).
type tenantUsageMetrics struct{ st *storage.Store }

var (
	tenantBytesDesc = prometheus.NewDesc("zipq_storage_tenant_bytes",
		"Bytes of the daily partitions of spans the tenant's rows take (its share by segment bytes), at the last maintenance round.", []string{"tenant"}, nil)
	tenantBudgetDesc = prometheus.NewDesc("zipq_storage_tenant_budget_bytes",
		"The tenant's retention_bytes (ZIPQ_TENANTS_FILE); 0: no budget.", []string{"tenant"}, nil)
	tenantOldestDesc = prometheus.NewDesc("zipq_storage_tenant_oldest_day_timestamp_seconds",
		"Start (UTC) of the tenant's oldest day of spans kept.", []string{"tenant"}, nil)
)

func (m tenantUsageMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- tenantBytesDesc
	ch <- tenantBudgetDesc
	ch <- tenantOldestDesc
}

func (m tenantUsageMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, t := range m.st.LastUsage().Tenants {
		ch <- prometheus.MustNewConstMetric(tenantBytesDesc, prometheus.GaugeValue, float64(t.Bytes), t.Tenant)
		ch <- prometheus.MustNewConstMetric(tenantBudgetDesc, prometheus.GaugeValue, float64(t.Budget), t.Tenant)
		ch <- prometheus.MustNewConstMetric(tenantOldestDesc, prometheus.GaugeValue, float64(t.OldestDay.Unix()), t.Tenant)
	}
}

// thinMetrics counts the traces keep by value judged, by tenant, root
// service and reason (kept for one, or thinned), as thin_counts does.
// Services past the first maxThinServices are counted as "_other", so a
// flood of service names cannot grow the series without bound.
func thinMetrics(st *storage.Store) prometheus.Collector {
	const maxThinServices = 1000
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zipq_keep_by_value_traces_total",
		Help: "Traces of days thinned by ZIPQ_KEEP, by tenant, root service and reason: error, slow, rare or sampled (kept), or thinned.",
	}, []string{"tenant", "service", "reason"})
	seen := map[[2]string]bool{} // only RunThinning's goroutine calls back
	st.OnThinned(func(counts []storage.ThinCount) {
		for _, n := range counts {
			k := [2]string{n.Tenant, n.Service}
			if !seen[k] && len(seen) >= maxThinServices {
				k[1] = "_other"
			}
			seen[k] = true
			c.WithLabelValues(k[0], k[1], n.Reason).Add(float64(n.Traces))
		}
	})
	return c
}

// replayer replays the parked messages of the tenant a request acts for.
func (t tenancy) replayer(bc broker.Config) replayer {
	return replayer{cfgs: t.brokers(bc)}
}

// selfTracing is zipq tracing its own requests and batch writes into its
// own span queue (SELF_TRACING_ENABLED); the zero value is off.
type selfTracing struct {
	tracer   *zipkingo.Tracer
	reporter *broker.SelfReporter
}

func newSelfTracing(enabled bool, pub *broker.Publisher, log *slog.Logger) (selfTracing, error) {
	if !enabled {
		return selfTracing{}, nil
	}
	rep := broker.NewSelfReporter(pub, time.Second, log.With("component", "self-tracing"))
	ep := &model.Endpoint{ServiceName: broker.SelfService}
	tr, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(ep), zipkingo.WithSharedSpans(true))
	if err != nil {
		return selfTracing{}, fmt.Errorf("self-tracing: %w", err)
	}
	return selfTracing{tracer: tr, reporter: rep}, nil
}

func (s selfTracing) writer(w collector.SpanWriter) collector.SpanWriter {
	if s.tracer == nil {
		return w
	}
	return collector.TracedWriter(w, s.tracer)
}

func (s selfTracing) add(g *run.Group) {
	if s.reporter != nil {
		addBackground(g, s.reporter.Run)
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// prepareStore migrates st (and creates partitions), retrying with backoff
// while PostgreSQL is unreachable; waiting reports each failure.
//
// readOnly allows a hot standby (a read replica: `zipq query` only). There
// nothing is migrated or maintained — the primary does that and the standby
// replays it — and zipq waits until the replica has the schema it needs.
func prepareStore(ctx context.Context, st *storage.Store, log *slog.Logger, readOnly bool, waiting func(error)) error {
	standby := false
	delay := 500 * time.Millisecond
	for {
		var err error
		standby, err = st.Standby(ctx)
		switch {
		case err != nil:
		case standby && !readOnly:
			return errors.New("PostgreSQL is a read-only standby: only zipq query may use a replica; point POSTGRES_URL at the primary")
		case standby:
			err = st.CheckMigrated(ctx)
		default:
			err = st.Migrate(ctx)
		}
		if err == nil {
			break
		}
		if waiting != nil {
			waiting(err)
		}
		log.Warn("database not ready; retrying", slog.Any("err", err), slog.Duration("backoff", delay))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
	if standby {
		log.Info("reading from a hot standby: no migrations or maintenance here")
		return nil
	}
	return st.Maintain(ctx, time.Now())
}

// database opens and migrates the store in the background, so a process
// started while PostgreSQL is down serves HTTP ingest and /health at once
// and reads, writes, the linker and maintenance start when it is ready.
type database struct {
	st       *storage.Store
	log      *slog.Logger
	readOnly bool
	ready    chan struct{}
	mu       sync.Mutex
	err      error // why it is not ready yet
}

func newDatabase(st *storage.Store, log *slog.Logger, readOnly bool) *database {
	return &database{st: st, log: log, readOnly: readOnly, ready: make(chan struct{}), err: errors.New("starting")}
}

// Run prepares the store (retrying while PostgreSQL is unreachable), marks
// it ready, and then waits for the group to stop.
func (d *database) Run(ctx context.Context) error {
	if err := prepareStore(ctx, d.st, d.log, d.readOnly, func(err error) {
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
	}); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting: not a failure
		}
		return err
	}
	close(d.ready)
	<-ctx.Done()
	return nil
}

// Ready is nil once the store is migrated, else why not.
func (d *database) Ready() error {
	select {
	case <-d.ready:
		return nil
	default:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// after runs loop once the store is ready (or never, if ctx ends first).
func (d *database) after(loop func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-d.ready:
			return loop(ctx)
		case <-ctx.Done():
			return nil
		}
	}
}

// check is /health's postgres check: DOWN while unreachable or not yet
// migrated.
func (d *database) check(ctx context.Context) error {
	if err := d.Ready(); err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	return d.st.Ping(ctx)
}

// boot parses a command's settings (logging and PostgreSQL, plus what bind
// adds), builds the logger and opens the migrated store, waiting (with
// backoff) while PostgreSQL is unreachable: the start of the one-shot
// commands that use the database (migrate). Servers use bootServer.
func boot(ctx context.Context, name string, args []string, bind func(*settings)) (*slog.Logger, *storage.Store, error) {
	log, sc, err := parseCommand(name, args, bind)
	if err != nil {
		return nil, nil, err
	}
	st, err := storage.Open(ctx, sc, log.With("component", "storage"))
	if err != nil {
		return nil, nil, err
	}
	// Waiting for the database (a one-shot command started before it)
	// ends on SIGINT/SIGTERM.
	startCtx, cancel := startupContext(ctx)
	defer cancel()
	if err := prepareStore(startCtx, st, log, false, nil); err != nil {
		st.Close()
		return nil, nil, err
	}
	return log, st, nil
}

// bootServer is boot for the long-running commands: the store is opened
// but prepared by the returned database in the run group, so the process
// serves at once even while PostgreSQL is down.
func bootServer(name string, args []string, bind func(*settings)) (*slog.Logger, *storage.Store, *database, error) {
	log, sc, err := parseCommand(name, args, bind)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := storage.Open(context.Background(), sc, log.With("component", "storage"))
	if err != nil {
		return nil, nil, nil, err
	}
	readOnly := name == "query" // the one command that only reads
	return log, st, newDatabase(st, log, readOnly), nil
}

// parseCommand reads a command's flags and environment into its configs,
// validates them all at once, and logs the effective configuration.
func parseCommand(name string, args []string, bind func(*settings)) (*slog.Logger, storage.Config, error) {
	lc := defaultLog()
	sc := storage.DefaultConfig()
	sc.Columns = ingest.SpanColumns // every process alike: writers store them, scans read them
	s := newSettings(name)
	bindLog(s, &lc)
	bindPostgres(s, &sc)
	if bind != nil {
		bind(s)
	}
	if err := s.parse(args); err != nil {
		return nil, sc, err
	}
	log, err := newLogger(lc)
	if err != nil {
		return nil, sc, err
	}
	log.Info("configuration", append([]any{slog.String("command", name)}, s.effective()...)...)
	return log, sc, nil
}

// startupContext ends on SIGINT/SIGTERM: for the waits before the run group
// starts, and for one-shot commands.
func startupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func addSignals(g *run.Group, ctx context.Context) {
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
}

// access is who may call this process (tokens) and over what (TLS).
type access struct {
	auth  *auth.Authenticator
	certs *certs.Server // nil: plain TCP
}

// newAccess loads the tokens and the certificate, and refuses to serve
// openly on any of addrs that is not a loopback address.
func newAccess(ac auth.Config, tf tlsFiles, reg prometheus.Registerer, log *slog.Logger, addrs ...string) (access, error) {
	var open []string
	for _, a := range addrs {
		if ingest.Enabled(a) {
			open = append(open, a)
		}
	}
	if err := ac.CheckExposure(open...); err != nil {
		return access{}, err
	}
	a, err := auth.New(ac, reg, log.With("component", "auth"))
	if err != nil {
		return access{}, err
	}
	acc := access{auth: a}
	if tf.cert != "" {
		if acc.certs, err = certs.LoadServer(tf.cert, tf.key, log.With("component", "tls")); err != nil {
			return access{}, err
		}
	}
	return acc, nil
}

// add reloads the tokens file on SIGHUP (connections and requests in
// progress are untouched; a bad file keeps the tokens in use).
func (a access) add(g *run.Group) {
	addBackground(g, func(ctx context.Context) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				_ = a.auth.Reload() // logged there
			}
		}
	})
}

// addHTTP serves h with qc's address and limits until interrupted, then
// shuts down gracefully; over TLS when acc has a certificate.
func addHTTP(g *run.Group, qc query.Config, acc access, h http.Handler, log *slog.Logger) error {
	ln, err := qc.Listen(qc.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", qc.Addr, err)
	}
	srv := qc.Server(h)
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", acc.certs != nil))
	g.Add(func() error {
		serve := func() error { return srv.Serve(ln) }
		if acc.certs != nil {
			srv.TLSConfig = acc.certs.Config()
			serve = func() error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

// addOTLP serves rcv's OTLP/HTTP and OTLP/gRPC (each unless "off") until
// interrupted, to callers with the write scope; the HTTP receiver has the
// API server's timeouts. With self-tracing on, export requests are traced
// like API requests.
func addOTLP(g *run.Group, rcv *ingest.Receiver, ic ingest.Config, qc query.Config, acc access, self selfTracing, log *slog.Logger) error {
	log = log.With("component", "otlp")
	grpcOpts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(acc.auth.UnaryInterceptor(auth.Write)),
		grpc.ChainStreamInterceptor(acc.auth.StreamInterceptor(auth.Write))}
	if acc.certs != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(acc.certs.Config())))
	}
	h := acc.auth.Require(auth.Write)(rcv.OTLPHandler())
	if self.tracer != nil {
		h = zipkinhttp.NewServerMiddleware(self.tracer, zipkinhttp.SpanName("post /v1/traces"))(h)
		grpcOpts = append(grpcOpts, grpc.StatsHandler(zipkingrpc.NewServerHandler(self.tracer)))
	}
	if ingest.Enabled(ic.OTLPHTTPAddr) {
		qc.Addr = ic.OTLPHTTPAddr
		if err := addHTTP(g, qc, acc, h, log); err != nil {
			return err
		}
	}
	if !ingest.Enabled(ic.OTLPGRPCAddr) {
		return nil
	}
	ln, err := qc.Listen(ic.OTLPGRPCAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", ic.OTLPGRPCAddr, err)
	}
	srv := rcv.GRPCServer(grpcOpts...)
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("protocol", "otlp-grpc"), slog.Bool("tls", acc.certs != nil))
	g.Add(func() error {
		if err := srv.Serve(ln); err != nil {
			return fmt.Errorf("otlp grpc: %w", err)
		}
		return nil
	}, func(error) {
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			srv.Stop()
		}
	})
	return nil
}

// addBackground runs a loop that ends when its context is cancelled.
func addBackground(g *run.Group, loop func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return loop(ctx) }, func(error) { cancel() })
}

// addCollector runs c once the database is ready: consuming earlier would
// only hold messages it cannot store (or, mid-migration, store them wrong).
// Stop waits for Run, so it is called only once Run has started.
func addCollector(g *run.Group, c *collector.Collector, db *database) {
	stop := make(chan struct{})
	g.Add(func() error {
		select {
		case <-db.ready:
		case <-stop:
			return nil
		}
		select {
		case <-stop: // both were ready: stopping wins
			return nil
		default:
		}
		go func() { <-stop; c.Stop() }() // drains; Run returns after it
		return c.Run(context.Background())
	}, func(error) { close(stop) })
}

// runGroup runs g; a signal is a clean exit.
func runGroup(g *run.Group, log *slog.Logger) error {
	err := g.Run()
	if errors.Is(err, run.ErrSignal) { // oklog/run's documented check
		log.Info("stopped", slog.Any("cause", err))
		return nil
	}
	return err
}

// replayer replays the parked messages of the tenant the request acts
// for, dialling RabbitMQ per request: replay is rare, and a fresh
// connection keeps it independent of the collector's.
type replayer struct{ cfgs map[string]broker.Config }

func (r replayer) Replay(ctx context.Context, limit int, reason string) (int, error) {
	cfg, ok := r.cfgs[tenant.From(ctx)]
	if !ok {
		return 0, fmt.Errorf("tenant %q has no span queue", tenant.From(ctx))
	}
	conn, err := broker.Dial(cfg, "zipq replay")
	if err != nil {
		return 0, fmt.Errorf("dial rabbitmq: %w", err)
	}
	defer conn.Close()
	return broker.Replay(ctx, conn, cfg, broker.ReplayOptions{Limit: limit, Reason: zipkin.Reason(reason)})
}

func postgresCheck(db *database) query.HealthCheck {
	return query.HealthCheck{Name: "postgres", Check: db.check}
}

// spanQueueCheck reports a span queue that loses transient messages when the
// broker restarts (a classic queue) as degraded. It says nothing when
// RabbitMQ cannot be asked: the rabbitmq check reports that.
func spanQueueCheck(pub *broker.Publisher, queue string) query.HealthCheck {
	return query.HealthCheck{Name: "spanQueue", Check: func(context.Context) error {
		if typ, err := pub.QueueType(); err == nil && typ == "classic" {
			return &query.Degraded{Reason: broker.ClassicQueueWarning(queue)}
		}
		return nil
	}}
}

// writerCheck reports a collector whose writes stall while PostgreSQL
// still answers pings (writes refused, read-only, disk full) as degraded,
// with the cause.
func writerCheck(c *collector.Collector) query.HealthCheck {
	return query.HealthCheck{Name: "writer", Check: func(context.Context) error {
		if err := c.Stalled(); err != nil {
			return &query.Degraded{Reason: "writes are stalled: no batch committed while messages wait, or the last writes failed", Cause: err}
		}
		return nil
	}}
}

func collectorCheck(c *collector.Collector, db *database, pub *broker.Publisher) query.HealthCheck {
	return query.HealthCheck{Name: "rabbitmq", Check: func(ctx context.Context) error {
		if db.Ready() != nil {
			// The collector waits for the database: ask RabbitMQ directly.
			return pub.Ping(ctx)
		}
		if !c.Connected() {
			return errors.New("collector is not connected to RabbitMQ")
		}
		return nil
	}}
}
