package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zipq/zipq/auth"
	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/ingest"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/spanmetrics"
	"github.com/zipq/zipq/storage"
)

// settings binds each option to a flag and an environment variable (Zipkin's
// own name where it has one). Precedence: flag, then environment, then
// default. The standard flag package suffices: Zipkin's variable names are
// unprefixed and irregular, so a prefix-mapping library would need the same
// explicit table anyway.
type settings struct {
	fs     *flag.FlagSet
	errs   []error
	rows   [][4]string    // flag, env, default, usage: `zipq config` prints them
	checks []func() error // each bound package's Validate, run after parsing
}

// check adds validations run once flags and environment are read.
func (s *settings) check(fns ...func() error) { s.checks = append(s.checks, fns...) }

func newSettings(name string) *settings {
	fs := flag.NewFlagSet("zipq "+name, flag.ContinueOnError)
	return &settings{fs: fs}
}

type value struct {
	set func(string) error
	get func() string
}

func (v value) Set(s string) error { return v.set(s) }
func (v value) String() string {
	if v.get == nil {
		return ""
	}
	return v.get()
}

// bind registers one option. Its default is the value *p holds when bound:
// each package's DefaultConfig, the one source of defaults.
func (s *settings) bind(name, env, usage string, set func(string) error, get func() string) {
	s.rows = append(s.rows, [4]string{name, env, get(), usage})
	if e, ok := os.LookupEnv(env); ok && env != "" {
		if err := set(e); err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: %w", env, e, err))
		}
	}
	if env != "" {
		usage += " (env " + env + ")"
	}
	s.fs.Var(value{set: set, get: get}, name, usage)
}

func (s *settings) str(p *string, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error { *p = v; return nil }, func() string { return *p })
}

// integer binds an integer of any width; a value that does not fit is
// refused like one that is not a number.
func integer[T ~int | ~int32 | ~int64](s *settings, p *T, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || int64(T(n)) != n {
			return errors.New("not an integer")
		}
		*p = T(n)
		return nil
	}, func() string { return strconv.FormatInt(int64(*p), 10) })
}

func (s *settings) duration(p *time.Duration, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration (e.g. 200ms, 24h)")
		}
		*p = d
		return nil
	}, func() string { return p.String() })
}

func (s *settings) boolean(p *bool, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("not a boolean (true or false)")
		}
		*p = b
		return nil
	}, func() string { return strconv.FormatBool(*p) })
}

func (s *settings) float(p *float64, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return errors.New("not a number")
		}
		*p = f
		return nil
	}, func() string { return strconv.FormatFloat(*p, 'g', -1, 64) })
}

// millis is a duration given in milliseconds, as Zipkin's QUERY_LOOKBACK
// and ZIPKIN_UI_DEFAULT_LOOKBACK are.
func (s *settings) millis(p *time.Duration, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("not a number of milliseconds")
		}
		*p = time.Duration(ms) * time.Millisecond
		return nil
	}, func() string { return strconv.FormatInt(p.Milliseconds(), 10) })
}

func (s *settings) list(p *[]string, name, env, usage string) {
	s.bind(name, env, usage, func(v string) error {
		*p = nil
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				*p = append(*p, k)
			}
		}
		return nil
	}, func() string { return strings.Join(*p, ",") })
}

func (s *settings) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	for _, c := range s.checks {
		if err := c(); err != nil {
			s.errs = append(s.errs, err)
		}
	}
	if err := errors.Join(s.errs...); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// The option groups; each subcommand binds the ones it uses, into configs
// that start as their package's DefaultConfig.

func bindLog(s *settings, c *logConfig) {
	s.str(&c.level, "log-level", "ZIPQ_LOG_LEVEL", "debug, info, warn or error")
	s.str(&c.format, "log-format", "ZIPQ_LOG_FORMAT", "text or json")
}

type logConfig struct{ level, format string }

func defaultLog() logConfig { return logConfig{level: "info", format: "text"} }

func bindRabbit(s *settings, c *broker.Config) {
	s.str(&c.URL, "rabbit-uri", "RABBIT_URI", "RabbitMQ URI")
	s.list(&c.Addresses, "rabbit-addresses", "RABBIT_ADDRESSES", "comma-separated host:port of RabbitMQ nodes; connect to any reachable one, with RABBIT_URI's user, password and vhost")
	s.str(&c.Queue, "rabbit-queue", "RABBIT_QUEUE", "queue spans are read from")
	s.str(&c.ParkedQueue, "rabbit-parked-queue", "RABBIT_PARKED_QUEUE", "parking queue for messages that cannot be stored (default <queue>.parked)")
	s.str(&c.ParkedQueueType, "rabbit-parked-queue-type", "RABBIT_PARKED_QUEUE_TYPE", "x-queue-type of the parking queue: quorum or classic")
	s.str(&c.ManagementURL, "rabbit-management-url", "RABBIT_MANAGEMENT_URL", "RabbitMQ management API, for the span queue's delivery-limit policy and the poison queue (default: first node, port 15672, RABBIT_URI's credentials; off: not used)")
	integer(s, &c.DeliveryLimit, "span-queue-delivery-limit", "ZIPQ_SPAN_QUEUE_DELIVERY_LIMIT", "delivery-limit of the policy collectors set on the span queue when none applies (dead-letters to <queue>.poison)")
	s.boolean(&c.UseSSL, "rabbit-use-ssl", "RABBIT_USE_SSL", "connect to RabbitMQ with TLS (amqp:// is dialled as amqps://, port 5671)")
	s.str(&c.CAFile, "rabbit-ca-file", "ZIPQ_RABBIT_CA_FILE", "PEM CA that signed RabbitMQ's certificate, for amqps (default: the system's)")
	s.str(&c.CertFile, "rabbit-cert-file", "ZIPQ_RABBIT_CERT_FILE", "PEM client certificate for amqps, when RabbitMQ verifies peers")
	s.str(&c.KeyFile, "rabbit-key-file", "ZIPQ_RABBIT_KEY_FILE", "its PEM key")
	s.check(func() error { return c.Validate() })
}

func bindCollector(s *settings, c *collector.Config) {
	integer(s, &c.Concurrency, "rabbit-concurrency", "RABBIT_CONCURRENCY", "consumers (channels) per collector process")
	integer(s, &c.Prefetch, "rabbit-prefetch", "RABBIT_PREFETCH", "unacked messages per consumer; 0 sizes it by -collector-window-bytes")
	integer(s, &c.WindowBytes, "collector-window-bytes", "COLLECTOR_WINDOW_BYTES", "unacked bytes per consumer the prefetch count is sized for (when -rabbit-prefetch is 0); bounds memory")
	integer(s, &c.BatchSpans, "batch-spans", "COLLECTOR_BATCH_SPANS", "write a batch at this many spans")
	s.duration(&c.BatchInterval, "batch-interval", "COLLECTOR_BATCH_INTERVAL", "or after this long")
	s.duration(&c.StopTimeout, "stop-timeout", "ZIPQ_STOP_TIMEOUT", "on SIGTERM, how long to wait for the last batch to commit")
	s.duration(&c.StallAfter, "stall-after", "COLLECTOR_STALL_AFTER", "/health reports the writer degraded when messages wait this long with no batch committed")
	s.check(func() error { return c.Validate() })
}

func bindPostgres(s *settings, c *storage.Config) {
	s.str(&c.URL, "postgres-url", "POSTGRES_URL", "PostgreSQL connection string")
	integer(s, &c.MaxConns, "postgres-max-conns", "POSTGRES_MAX_CONNS", "connection pool size")
	s.duration(&c.Retention, "retention", "ZIPQ_RETENTION", "keep spans this long; older daily partitions are dropped")
	integer(s, &c.RetentionBytes, "retention-bytes", "ZIPQ_RETENTION_BYTES", "when above 0, a budget in bytes for the whole schema: past it, the oldest daily partitions are dropped first (never today's), checked every five minutes")
	s.str(&c.Keep, "keep", "ZIPQ_KEEP", "keep by value: once a day is ZIPQ_KEEP_AFTER old, keep only the traces this policy names and thin the rest, e.g. errors,slow=p99,rare=100,sample=10% (README \"Keep by value\"); empty: keep every trace for the whole retention")
	s.duration(&c.KeepAfter, "keep-after", "ZIPQ_KEEP_AFTER", "with ZIPQ_KEEP, how long past the end of its day every trace is kept whole before the day is thinned")
	s.duration(&c.PackAfter, "pack-after", "ZIPQ_PACK_AFTER", "how long past the end of its day the day's traces are packed, dozens to a zstd block of about 24 KB (a tenth to a quarter fewer bytes on disk); below 0: never")
	s.boolean(&c.NoStats, "no-service-metrics", "ZIPQ_NO_SERVICE_METRICS", "do not count the service metrics as spans are stored (benchmarks compare the two; the Services page and TraceQL metrics then miss those spans)")
	integer(s, &c.StatsCacheBytes, "stats-cache-bytes", "ZIPQ_STATS_CACHE_BYTES", "memory for the service metrics' hourly strips kept decoded between reads (the Services page's day at one-minute steps reads 1,200); below 0: none kept")
	s.duration(&c.StatsRetention, "stats-retention", "ZIPQ_STATS_RETENTION", "keep the service metrics (rates, errors, latency sketches) this long; hourly after a day")
	integer(s, &c.PartitionsAhead, "partitions-ahead", "ZIPQ_PARTITIONS_AHEAD", "daily partitions created ahead of time")
	s.duration(&c.LinkInterval, "link-interval", "ZIPQ_LINK_INTERVAL", "how often dependency links are brought up to date and multi-segment traces compacted (collector, serve)")
	s.list(&c.AutocompleteKeys, "autocomplete-keys", "AUTOCOMPLETE_KEYS", "comma-separated tag keys offered by /api/v2/autocompleteValues")
	s.check(func() error { return c.Validate() })
}

// bindHTTP binds the server's own settings (every process serves /health
// and /metrics).
func bindHTTP(s *settings, c *query.Config) {
	if p := os.Getenv("QUERY_PORT"); p != "" {
		c.Addr = "127.0.0.1:" + p
	}
	s.str(&c.Addr, "http-addr", "ZIPQ_HTTP_ADDR", "listen address of the API, UI, /health and /metrics (QUERY_PORT sets the port alone)")
	s.boolean(&c.Pprof, "pprof", "ZIPQ_PPROF", "serve Go profiles at /debug/pprof (for benchmarks; do not expose)")
	s.duration(&c.ReadTimeout, "http-read-timeout", "ZIPQ_HTTP_READ_TIMEOUT", "longest time to read a whole request, body included")
	s.duration(&c.WriteTimeout, "http-write-timeout", "ZIPQ_HTTP_WRITE_TIMEOUT", "longest time to answer a request, writing included: a client reading slower is cut off")
	s.duration(&c.IdleTimeout, "http-idle-timeout", "ZIPQ_HTTP_IDLE_TIMEOUT", "keep-alive connections idle this long are closed")
	integer(s, &c.MaxHeaderBytes, "http-max-header-bytes", "ZIPQ_HTTP_MAX_HEADER_BYTES", "largest request header block (431 beyond)")
	integer(s, &c.MaxConnections, "max-connections", "ZIPQ_MAX_CONNECTIONS", "connections each listener (HTTP API, OTLP/HTTP, OTLP/gRPC) serves at once; more wait")
	s.check(func() error { return c.Validate() })
}

// bindAccess binds who may call the process (tokens) and over what (TLS on
// every listener).
func bindAccess(s *settings, c *auth.Config, t *tlsFiles) {
	s.str(&c.Mode, "auth", "ZIPQ_AUTH", "auto: tokens are required once any read or write token is configured, and without tokens zipq listens on loopback only; tokens: always required; none: reads and writes open to anyone on any address (admin actions still need an admin token)")
	s.str(&c.TokensFile, "tokens-file", "ZIPQ_TOKENS_FILE", "file of tokens, one per line (name scopes tenant expires bcrypt-hash; `zipq token` makes them); reloaded on SIGHUP")
	s.str(&c.ReadToken, "read-token", "ZIPQ_READ_TOKEN", "a bearer token with the read scope (APIs, UI, /metrics)")
	s.str(&c.WriteToken, "write-token", "ZIPQ_WRITE_TOKEN", "a bearer token with the write scope (HTTP, OTLP/HTTP and OTLP/gRPC ingest)")
	s.str(&c.AdminToken, "admin-token", "ZIPQ_ADMIN_TOKEN", "a bearer token with every scope, admin included (replay, discard, the pipeline page); with no admin token the admin actions are off")
	integer(s, &c.FailureBurst, "auth-failure-burst", "ZIPQ_AUTH_FAILURE_BURST", "failed token checks an address may make at once, and then per minute; beyond that it is answered 429")
	s.str(&t.cert, "tls-cert-file", "ZIPQ_TLS_CERT_FILE", "PEM certificate (chain) for HTTPS and gRPC over TLS on every listener; reloaded when the file changes")
	s.str(&t.key, "tls-key-file", "ZIPQ_TLS_KEY_FILE", "its PEM key")
	s.check(func() error { return c.Validate() })
	s.check(func() error {
		if (t.cert == "") != (t.key == "") {
			return errors.New("tls: set both ZIPQ_TLS_CERT_FILE and ZIPQ_TLS_KEY_FILE, or neither")
		}
		return nil
	})
}

// bindTenants binds the tenants file, read (and checked with the other
// settings) into t once the span queue's name is known.
func bindTenants(s *settings, t *tenancy, bc *broker.Config) {
	var file string
	s.str(&file, "tenants-file", "ZIPQ_TENANTS_FILE", "tenants besides the default one, a line each: name [uri=amqp://…/vhost] [queue=Q] [spans_per_second=N] [bytes_per_second=N] [retention=D] [retention_bytes=N] [max_series=N] [max_trace_spans=N] (README \"Tenants\"); each has a span queue of its own (default <RABBIT_QUEUE>.<name>, or RABBIT_QUEUE in its uri's vhost)")
	s.check(func() error {
		var err error
		*t, err = loadTenancy(file, *bc)
		return err
	})
}

// tlsFiles are the server certificate and key; empty: plain TCP.
type tlsFiles struct{ cert, key string }

// bindAPI binds the query API's settings.
func bindAPI(s *settings, c *query.Config) {
	s.boolean(&c.StrictTraceID, "strict-trace-id", "STRICT_TRACE_ID", "false: find 128-bit traces by their lower 64 bits and merge traces differing only in the high bits")
	s.millis(&c.Lookback, "query-lookback", "QUERY_LOOKBACK", "default lookback of /api/v2/traces and /dependencies, in milliseconds")
	integer(s, &c.MaxHeavyReads, "max-heavy-reads", "ZIPQ_MAX_HEAVY_READS", "searches and trace reads (whole traces) answered at once; more are 503 with Retry-After")
	integer(s, &c.MetricsScanTraces, "metrics-scan-traces", "ZIPQ_METRICS_SCAN_TRACES", "traces a TraceQL metrics query the service metrics cannot answer may scan; a window holding more is refused (400)")
	s.list(&c.AllowedOrigins, "query-allowed-origins", "QUERY_ALLOWED_ORIGINS", "CORS origins allowed on /api/v2 (comma-separated; README \"CORS\")")
	s.str(&c.UI.Environment, "ui-environment", "ZIPKIN_UI_ENVIRONMENT", "environment name shown by the UI")
	integer(s, &c.UI.QueryLimit, "ui-query-limit", "ZIPKIN_UI_QUERY_LIMIT", "default result limit of the UI's search")
	integer(s, &c.UI.DefaultLookback, "ui-default-lookback", "ZIPKIN_UI_DEFAULT_LOOKBACK", "default lookback of the UI's search, in milliseconds")
	s.boolean(&c.UI.SearchEnabled, "ui-search-enabled", "ZIPKIN_UI_SEARCH_ENABLED", "show the search form in the UI")
	s.boolean(&c.UI.Dependency.Enabled, "ui-dependency-enabled", "ZIPKIN_UI_DEPENDENCY_ENABLED", "show the dependency graph in the UI")
	s.float(&c.UI.Dependency.LowErrorRate, "ui-dependency-low-error-rate", "ZIPKIN_UI_DEPENDENCY_LOW_ERROR_RATE", "error rate from which an edge is drawn amber")
	s.float(&c.UI.Dependency.HighErrorRate, "ui-dependency-high-error-rate", "ZIPKIN_UI_DEPENDENCY_HIGH_ERROR_RATE", "error rate from which an edge is drawn red")
}

// bindIngest binds what every way into the pipeline accepts (the queue,
// HTTP and gRPC alike) and, with edges, the HTTP and gRPC receivers
// (serve and query).
func bindIngest(s *settings, c *ingest.Config, edges bool) {
	s.float(&c.SampleRate, "sample-rate", "COLLECTOR_SAMPLE_RATE", "share of traces kept, in (0, 1], by trace ID (AMQP, HTTP and OTLP ingest)")
	integer(s, &c.MaxBytes, "max-message-bytes", "COLLECTOR_MAX_MESSAGE_BYTES", "larger messages are parked as too_large, larger HTTP and OTLP bodies refused with 413")
	integer(s, &c.MaxExpandedTags, "max-expanded-tags", "ZIPQ_MAX_EXPANDED_TAGS", "an OTLP request or message whose spans would carry more tags once translated (resource attributes copied into every span) is refused whole as too large")
	integer(s, &c.MaxExpandedBytes, "max-expanded-bytes", "ZIPQ_MAX_EXPANDED_BYTES", "likewise for the bytes of those tags' keys and values")
	if edges {
		integer(s, &c.MaxInFlightBytes, "max-inflight-bytes", "ZIPQ_MAX_INFLIGHT_BYTES", "request bodies HTTP, OTLP and gRPC ingest hold at once; past it a request is told to retry (429, UNAVAILABLE)")
		s.str(&c.OTLPHTTPAddr, "otlp-http-addr", "ZIPQ_OTLP_HTTP_ADDR", "listen address of OTLP/HTTP (POST /v1/traces); off to disable")
		s.str(&c.OTLPGRPCAddr, "otlp-grpc-addr", "ZIPQ_OTLP_GRPC_ADDR", "listen address of OTLP/gRPC (TraceService/Export); off to disable")
		s.duration(&c.ConfirmTimeout, "otlp-confirm-timeout", "ZIPQ_OTLP_CONFIRM_TIMEOUT", "how long HTTP, OTLP and gRPC ingest wait for RabbitMQ's confirm before the client is told to retry")
		s.str(&c.QueueFormat, "otlp-queue-format", "ZIPQ_OTLP_QUEUE_FORMAT", "what OTLP exports put on the queue: zipkin (translated at the edge) or otlp (as received, translated by collectors; docs/BENCHMARKS.md)")
	}
	s.check(func() error { return c.Validate() })
}

func bindSpanMetrics(s *settings, c *spanmetrics.Config) {
	s.boolean(&c.Enabled, "span-metrics", "ZIPQ_SPAN_METRICS", "expose the stored spans on /metrics as the OpenTelemetry Collector's spanmetrics and servicegraph connectors do (traces_span_metrics_*, traces_service_graph_*), for Jaeger's Monitor tab and Grafana's service graph")
	integer(s, &c.MaxSeries, "span-metrics-max-series", "ZIPQ_SPAN_METRICS_MAX_SERIES", "distinct label sets of the span metrics (and of the service graph's edges); past it spans are counted in one otel_metric_overflow=\"true\" series")
	s.check(func() error { return c.Validate() })
}

func bindSelfTracing(s *settings, enabled *bool) {
	s.boolean(enabled, "self-tracing", "SELF_TRACING_ENABLED", "trace zipq's own API requests and batch writes, stored as service zipq")
}

// secretFlags are masked when the effective configuration is logged.
var secretFlags = map[string]bool{"admin-token": true, "read-token": true, "write-token": true}

// effective is every bound setting's current value for the start-up log,
// with passwords in URLs and tokens masked.
func (s *settings) effective() []any {
	var out []any
	s.fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		switch {
		case secretFlags[f.Name] && v != "":
			v = "xxxxx"
		case strings.Contains(v, "://"):
			if u, err := url.Parse(v); err == nil {
				v = u.Redacted()
			}
		case strings.Contains(v, "password="):
			v = maskKeyword.ReplaceAllString(v, "password=xxxxx")
		}
		out = append(out, slog.String(f.Name, v))
	})
	return out
}

var maskKeyword = regexp.MustCompile(`password=\S*`)

func newLogger(c logConfig) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch c.format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.format)
}
