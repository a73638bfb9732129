// Package query is zipq's HTTP surface on chi: the Zipkin API v2, the
// operational endpoints (/health, /metrics, /info) and the admin replay
// endpoint. It declares what it needs from the rest of zipq as small
// interfaces and never imports storage or collector.
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	kgzip "github.com/klauspost/compress/gzip"
	zipkingo "github.com/openzipkin/zipkin-go"
	zipkinmw "github.com/openzipkin/zipkin-go/middleware/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/zipq/zipq/auth"
)

// HealthCheck is one dependency /health reports on. Check returns nil when
// it is UP, a *Degraded when it works but loses a guarantee (/health stays
// 200 and says DEGRADED with the reason), and any other error when it is
// DOWN (503).
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Degraded is a dependency that works but not as promised, such as a span
// queue that will not survive a broker restart. Reason is zipq's own words,
// shown to anyone; Cause (optional) may carry internal detail (a
// database's error text) and is shown only with the admin token.
type Degraded struct {
	Reason string
	Cause  error
}

func (d *Degraded) Error() string {
	if d.Cause != nil {
		return d.Reason + ": " + d.Cause.Error()
	}
	return d.Reason
}

// Replayer moves parked messages back to their queue (broker.Replay).
type Replayer interface {
	Replay(ctx context.Context, limit int, reason string) (int, error)
}

// Config is the HTTP server's settings; DefaultConfig is their one
// source and the command line binds its flags from it.
type Config struct {
	// Addr is where the API, UI, /health and /metrics listen.
	Addr string
	// Pprof mounts net/http/pprof at /debug (ZIPQ_PPROF), for profiling a
	// running collector; off by default.
	Pprof bool
	// StrictTraceID is Zipkin's STRICT_TRACE_ID: when false, a trace is
	// identified by the lower 64 bits of its ID.
	StrictTraceID bool
	// Lookback is QUERY_LOOKBACK, the default search and dependency window.
	Lookback time.Duration
	// AllowedOrigins is QUERY_ALLOWED_ORIGINS for CORS on /api/v2 ("*": any).
	AllowedOrigins []string
	UI             UIConfig
	// Server limits: a client slower than these is disconnected, so slow
	// or stalled clients cannot hold connections and response memory
	// forever. WriteTimeout covers a whole response, so it must allow the
	// largest trace download on the slowest link served.
	ReadTimeout    time.Duration // whole request, body included
	WriteTimeout   time.Duration // from the end of the request headers to the end of the response
	IdleTimeout    time.Duration // keep-alive connection between requests
	MaxHeaderBytes int
	// MaxConnections bounds the connections a listener serves at once
	// (each HTTP listener, and OTLP/gRPC's); more wait in the kernel's
	// backlog. Memory grows with connections (a slow reader of a large
	// trace pins its answer), so their number is bounded, not only their
	// time.
	MaxConnections int
	// MaxHeavyReads bounds the reads returning whole traces (search,
	// trace, traceMany) in progress at once; more are 503 + Retry-After.
	MaxHeavyReads int
	// MetricsScanTraces bounds the traces a TraceQL metrics query that the
	// service metrics cannot answer may scan; a window holding more is a
	// 400 saying what to narrow.
	MetricsScanTraces int
}

// DefaultConfig is Zipkin's defaults where Zipkin has one.
func DefaultConfig() Config {
	return Config{
		Addr:           "127.0.0.1:9411",
		StrictTraceID:  true,
		Lookback:       24 * time.Hour,
		AllowedOrigins: []string{"*"},
		UI: UIConfig{QueryLimit: DefaultLimit, DefaultLookback: (15 * time.Minute).Milliseconds(), SearchEnabled: true,
			Dependency: UIDeps{Enabled: true, LowErrorRate: 0.5, HighErrorRate: 0.75}},
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConnections:    1024,
		MaxHeavyReads:     64,
		MetricsScanTraces: 20_000,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http address %q: %w", c.Addr, err))
	}
	for name, d := range map[string]time.Duration{"lookback": c.Lookback, "read timeout": c.ReadTimeout,
		"write timeout": c.WriteTimeout, "idle timeout": c.IdleTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: want a positive duration", name, d))
		}
	}
	if c.MaxHeaderBytes <= 0 {
		errs = append(errs, fmt.Errorf("max header bytes %d: want a positive size", c.MaxHeaderBytes))
	}
	if c.MaxConnections <= 0 || c.MaxHeavyReads <= 0 || c.MetricsScanTraces <= 0 {
		errs = append(errs, fmt.Errorf("max connections %d, max heavy reads %d, metrics scan traces %d: want positive numbers",
			c.MaxConnections, c.MaxHeavyReads, c.MetricsScanTraces))
	}
	if c.UI.QueryLimit <= 0 || c.UI.QueryLimit > MaxLimit {
		errs = append(errs, fmt.Errorf("ui query limit %d: want 1 to %d", c.UI.QueryLimit, MaxLimit))
	}
	if c.UI.DefaultLookback <= 0 {
		errs = append(errs, fmt.Errorf("ui default lookback %dms: want a positive number", c.UI.DefaultLookback))
	}
	if d := c.UI.Dependency; d.LowErrorRate < 0 || d.HighErrorRate > 1 || d.LowErrorRate > d.HighErrorRate {
		errs = append(errs, fmt.Errorf("dependency error rates %v, %v: want 0 <= low <= high <= 1", d.LowErrorRate, d.HighErrorRate))
	}
	return errors.Join(errs...)
}

// Listen listens on addr with c's connection limit.
func (c Config) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(ln, c.MaxConnections), nil
}

// Server is an http.Server for h with c's address and limits.
func (c Config) Server(h http.Handler) *http.Server {
	return &http.Server{Addr: c.Addr, Handler: h, ReadHeaderTimeout: min(10*time.Second, c.ReadTimeout),
		ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes}
}

// Options wires the router: the settings, and what serves each route. Nil
// fields switch their routes off.
type Options struct {
	Config
	Logger     *slog.Logger
	Registerer prometheus.Registerer // request metrics are registered here
	Gatherer   prometheus.Gatherer   // /metrics and /prometheus serve this
	Health     []HealthCheck
	Version    string
	Replayer   Replayer
	// Auth says who may read, write and administer; nil serves reads and
	// writes openly with the admin actions off.
	Auth *auth.Authenticator

	// Reader serves the Zipkin read API (/api/v2/...); nil switches it off.
	Reader SpanReader
	// Finder and Tempo, with Reader, serve Grafana Tempo's query API
	// (TraceQL search, tags, trace by ID as OTLP) beside Zipkin's; either
	// nil switches it off.
	Finder TraceFinder
	Tempo  TempoModel
	// Stats serves the service metrics at /api/zipq/stats; nil switches
	// it off.
	Stats StatsReader
	// Thinned, when set, says why a trace read by ID is gone: its 404
	// names the keep-by-value policy and the day that thinned it.
	Thinned ThinnedReader
	// ReaderReady, when set, gates the read API: while it returns an error
	// (the database is still unreachable or being migrated at start),
	// reads are 503 with Retry-After. HTTP ingest never waits on it.
	ReaderReady func() error
	// Ingest serves POST /api/v2/spans (ingest.Receiver.ZipkinHandler);
	// nil switches it off.
	Ingest           http.Handler
	AutocompleteKeys []string
	// Tracer, when set, traces API requests (self-tracing).
	Tracer *zipkingo.Tracer
	// Assets serves the web UI for every path no other route takes.
	Assets http.Handler
	// Pipeline reports the queue, parking and rates for the UI's pipeline
	// page (a JSON-encodable snapshot); peek also lists parked messages.
	Pipeline func(ctx context.Context, peek bool) (any, error)
	// Discard drops one parked message by its ID (broker.Monitor.Discard),
	// for admin tokens only.
	Discard func(ctx context.Context, id string) (int, error)
}

// UIConfig is what /config.json tells Zipkin's UI (and zipq's).
type UIConfig struct {
	Environment     string  `json:"environment"`
	QueryLimit      int     `json:"queryLimit"`
	DefaultLookback int64   `json:"defaultLookback"` // milliseconds
	SearchEnabled   bool    `json:"searchEnabled"`
	Dependency      UIDeps  `json:"dependency"`
	LogsURL         *string `json:"logsUrl"`
	SupportURL      *string `json:"supportUrl"`
	ArchivePostURL  *string `json:"archivePostUrl"`
	ArchiveURL      *string `json:"archiveUrl"`
}

// UIDeps configures the dependency graph's colouring by error rate.
type UIDeps struct {
	Enabled       bool    `json:"enabled"`
	LowErrorRate  float64 `json:"lowErrorRate"`
	HighErrorRate float64 `json:"highErrorRate"`
}

// withDefaults fills the zero settings a router cannot work without from
// DefaultConfig (tests build Options by hand).
func (o *Options) withDefaults() {
	d := DefaultConfig()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Lookback <= 0 {
		o.Lookback = d.Lookback
	}
	if len(o.AllowedOrigins) == 0 {
		o.AllowedOrigins = d.AllowedOrigins
	}
	if o.UI.QueryLimit <= 0 {
		o.UI.QueryLimit = d.UI.QueryLimit
	}
	if o.UI.DefaultLookback <= 0 {
		o.UI.DefaultLookback = d.UI.DefaultLookback
	}
	if o.MaxHeavyReads <= 0 {
		o.MaxHeavyReads = d.MaxHeavyReads
	}
	if o.MetricsScanTraces <= 0 {
		o.MetricsScanTraces = d.MetricsScanTraces
	}
	if o.Auth == nil {
		o.Auth, _ = auth.New(auth.DefaultConfig(), nil, nil) // no tokens: cannot fail
	}
}

// NewRouter builds the HTTP handler.
func NewRouter(o Options) http.Handler {
	o.withDefaults()
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	// A request id on every response (X-Request-Id), quoted by 5xx bodies
	// and logged with their cause, which the bodies never carry.
	// Every answer also says nosniff: a browser must never run an API
	// answer (JSON or plain text that echoes span data) as a script or page.
	r.Use(middleware.RequestID, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(middleware.RequestIDHeader, middleware.GetReqID(r.Context()))
			w.Header().Set("X-Content-Type-Options", "nosniff")
			next.ServeHTTP(w, r)
		})
	})
	if o.Registerer != nil {
		r.Use(instrument(o.Registerer))
	}
	if o.WriteTimeout > 0 {
		// Past the write timeout the server can no longer deliver the
		// answer: stop computing it too (queries end with the context).
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithTimeout(r.Context(), o.WriteTimeout)
				defer cancel()
				next.ServeHTTP(w, r.WithContext(ctx))
			})
		})
	}
	read, admin := o.Auth.Require(auth.Read), o.Auth.Require(auth.Admin)
	r.Get("/health", health(o.Health, o.Auth, o.Logger))
	r.Get("/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"zipkin": map[string]string{"version": o.Version}, "zipq": map[string]string{"version": o.Version}})
	})
	if o.Gatherer != nil {
		h := promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
		// Metrics carry service and span names: read scope; with several
		// tenants admin, as the series are every tenant's.
		scrape := read
		if o.Auth.MultiTenant() {
			scrape = admin
		}
		r.With(scrape).Method(http.MethodGet, "/metrics", h)
		r.With(scrape).Method(http.MethodGet, "/prometheus", h)
	}
	if o.Reader != nil || o.Ingest != nil {
		a := &api{o: o, log: o.Logger, heavy: make(chan struct{}, o.MaxHeavyReads)}
		var tempo *tempoAPI
		if o.Reader != nil && o.Finder != nil && o.Tempo != nil {
			tempo = &tempoAPI{a: a, model: o.Tempo, finder: o.Finder, stats: o.Stats}
			r.Group(func(r chi.Router) {
				r.Use(cors.Handler(cors.Options{AllowedOrigins: o.AllowedOrigins, AllowedMethods: []string{http.MethodGet, http.MethodOptions},
					AllowedHeaders: []string{"Accept", "Authorization", auth.TenantHeader}, MaxAge: 600}))
				r.Use(compress(5, "application/json", "application/protobuf"))
				if o.Tracer != nil {
					r.Use(traced(o.Tracer))
				}
				tempo.routes(r, o.Version)
			})
		}
		r.Route("/api/v2", func(r chi.Router) {
			r.Use(cors.Handler(cors.Options{
				AllowedOrigins: o.AllowedOrigins,
				AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
				AllowedHeaders: []string{"Content-Type", "Content-Encoding", "Authorization", auth.TenantHeader},
				MaxAge:         600,
			}))
			// Answers are JSON that compresses ~15× (a 10,000-span trace:
			// 4.1 MB, 267 kB gzipped), as Zipkin's server compresses them.
			r.Use(compress(5, "application/json"))
			if o.Tracer != nil {
				r.Use(traced(o.Tracer))
			}
			a.routes(r)
			if tempo != nil {
				tempo.v2Routes(r)
			}
		})
		if o.Stats != nil {
			r.Group(func(r chi.Router) {
				// Level 1: columns of numbers, where it gives within 2 % of
				// level 5's bytes in about half the time (BenchmarkStatsAnswer).
				r.Use(compress(1, "application/json"))
				if o.Tracer != nil {
					r.Use(traced(o.Tracer))
				}
				r.With(read, a.readerReady).Get("/api/zipq/stats", a.stats)
				r.With(read, a.readerReady).Get("/api/zipq/usage", a.usage)
			})
		}
		uiConfig := func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, o.UI) }
		r.Get("/config.json", uiConfig)
		r.Get("/zipkin/config.json", uiConfig)
	}
	// The admin actions always need an admin token, enforced or not; with
	// no admin token configured they are not served at all.
	adminEnabled := o.Auth.HasAdmin() && o.Replayer != nil
	if adminEnabled {
		action := o.Auth.RequireToken(auth.Admin)
		r.With(action).Post("/admin/replay", replay(o.Replayer, o.Logger))
		if o.Discard != nil {
			r.With(action).Post("/admin/parked/discard", discard(o.Discard, o.Logger))
		}
	}
	if o.Pprof {
		r.Route("/debug/pprof", func(r chi.Router) { r.Use(admin); r.Mount("/", profiler()) })
	}
	if o.Pipeline != nil {
		// Parked messages are other services' span data: admin.
		r.With(admin).Get("/api/zipq/pipeline", pipeline(o.Pipeline, adminEnabled))
	}
	if o.Assets != nil {
		r.Handle("/*", o.Assets)
	}
	return r
}

// health answers /health. A dependency's error text (a database's user,
// host and message) goes to the log when its status changes, and into the
// answer only for a caller with the admin token: anyone else sees the
// status and zipq's own words.
func health(checks []HealthCheck, access *auth.Authenticator, log *slog.Logger) http.HandlerFunc {
	var mu sync.Mutex
	last := map[string]string{}
	logChange := func(name, status string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if last[name] == status {
			return
		}
		last[name] = status
		if err != nil {
			log.Warn("dependency "+status, slog.String("dependency", name), slog.Any("err", err))
		} else {
			log.Info("dependency "+status, slog.String("dependency", name))
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		detailed := access.Has(r, auth.Admin)
		// The checks answer for the dependencies, not for this client: one
		// that goes away mid-check must not turn them DOWN (in the log,
		// the metrics or a proxy's view).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
		defer cancel()
		type status struct {
			Status string `json:"status"`
			Error  string `json:"error,omitempty"`
		}
		out := map[string]any{}
		deps := map[string]status{}
		code, overall := http.StatusOK, "UP"
		for _, c := range checks {
			err := c.Check(ctx)
			if d := (*Degraded)(nil); errors.As(err, &d) {
				msg := d.Reason
				if detailed {
					msg = d.Error()
				}
				deps[c.Name] = status{Status: "DEGRADED", Error: msg}
				logChange(c.Name, "DEGRADED", err)
				if overall == "UP" {
					overall = "DEGRADED"
				}
				continue
			}
			if err != nil {
				msg := "unavailable (the server log has the cause; so does /health with the admin token)"
				if detailed {
					msg = err.Error()
				}
				deps[c.Name] = status{Status: "DOWN", Error: msg}
				logChange(c.Name, "DOWN", err)
				code, overall = http.StatusServiceUnavailable, "DOWN"
				continue
			}
			deps[c.Name] = status{Status: "UP"}
			logChange(c.Name, "UP", nil)
		}
		out["status"] = overall
		out["zipkin"] = map[string]any{"status": overall, "details": deps}
		writeJSON(w, code, out)
	}
}

func replay(rp Replayer, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := 0
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				httpError(w, http.StatusBadRequest, "limit must be a non-negative integer")
				return
			}
			limit = n
		}
		reason := r.URL.Query().Get("reason")
		n, err := rp.Replay(r.Context(), limit, reason)
		if err != nil {
			log.Error("replay failed", slog.Int("replayed", n), slog.Any("err", err))
			writeJSON(w, http.StatusBadGateway, map[string]any{"replayed": n, "error": err.Error()})
			return
		}
		log.Info("replayed parked messages", slog.Int("replayed", n), slog.String("reason", reason))
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
	}
}

// discard drops one parked message, named by the id the pipeline page
// lists (broker.ParkedID): for a message that can never be stored.
func discard(drop func(context.Context, string) (int, error), log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			httpError(w, http.StatusBadRequest, "id must be the 16 hex characters the pipeline page lists for a parked message")
			return
		}
		n, err := drop(r.Context(), id)
		if err != nil {
			log.Error("discard failed", slog.String("id", id), slog.Any("err", err))
			writeJSON(w, http.StatusBadGateway, map[string]any{"discarded": 0, "error": err.Error()})
			return
		}
		if n == 0 {
			writeJSON(w, http.StatusNotFound, map[string]any{"discarded": 0, "error": "no parked message has id " + id + " (replayed or discarded already?)"})
			return
		}
		log.Info("discarded a parked message", slog.String("id", id))
		writeJSON(w, http.StatusOK, map[string]int{"discarded": n})
	}
}

func pipeline(snapshot func(context.Context, bool) (any, error), adminEnabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		p, err := snapshot(ctx, r.URL.Query().Get("parked") != "")
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"adminEnabled": adminEnabled, "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"adminEnabled": adminEnabled, "pipeline": p})
	}
}

// compress gzips (or deflates) answers of these types for clients that
// accept it, at level, with klauspost/compress's gzip rather than the
// standard library's: answers about a tenth larger, made 1.4–1.8× faster
// (BenchmarkStatsAnswer: a day of 50 services' minutes in columns, 34 ms
// encoded and gzipped instead of 53), and the gzip is most of what a
// large answer adds to its read.
func compress(level int, types ...string) func(http.Handler) http.Handler {
	c := middleware.NewCompressor(level, types...)
	c.SetEncoder("gzip", func(w io.Writer, level int) io.Writer {
		gw, err := kgzip.NewWriterLevel(w, level)
		if err != nil {
			panic(err) // the routes give valid constants
		}
		return gw
	})
	return c.Handler
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// httpError is a plain-text error, as Zipkin returns them.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// instrument counts requests and their latency per route pattern (not per
// URL, so trace IDs do not explode the label set).
func instrument(reg prometheus.Registerer) func(http.Handler) http.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_http_requests_total",
		Help: "HTTP requests by route and status."}, []string{"route", "method", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "zipq_http_request_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route", "method"})
	reg.MustRegister(reqs, lat)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched"
			}
			reqs.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Inc()
			lat.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
		})
	}
}

// traced records each API request as a server span named after its route
// ("get /api/v2/trace/{traceId}"), as Zipkin's own self-tracing does.
func traced(tr *zipkingo.Tracer) func(http.Handler) http.Handler {
	mw := zipkinmw.NewServerMiddleware(tr)
	return func(next http.Handler) http.Handler {
		return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if sp := zipkingo.SpanFromContext(r.Context()); sp != nil {
				sp.SetName(strings.ToLower(r.Method + " " + chi.RouteContext(r.Context()).RoutePattern()))
			}
		}))
	}
}

// profiler serves net/http/pprof's profiles, without /cmdline: the
// command line can carry the database password and the admin token.
func profiler() http.Handler {
	r := chi.NewRouter()
	r.Get("/", pprof.Index)
	r.Get("/profile", pprof.Profile)
	r.Get("/symbol", pprof.Symbol)
	r.Post("/symbol", pprof.Symbol)
	r.Get("/trace", pprof.Trace)
	r.Get("/{profile}", func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "profile")
		if name == "cmdline" {
			http.NotFound(w, r)
			return
		}
		pprof.Handler(name).ServeHTTP(w, r)
	})
	return r
}
