package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zipq/zipq/collector"
	"github.com/zipq/zipq/query"
	"github.com/zipq/zipq/storage"
)

// settings binds each option to a flag and an environment variable (Zipkin's
// own name where it has one). Precedence: flag, then environment, then
// default. The standard flag package suffices: Zipkin's variable names are
// unprefixed and irregular, so a prefix-mapping library would need the same
// explicit table anyway.
type settings struct {
	fs   *flag.FlagSet
	errs []error
	rows [][4]string // flag, env, default, usage: `zipq config` prints them
}

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

func (s *settings) bind(name, env, def, usage string, set func(string) error, get func() string) {
	s.rows = append(s.rows, [4]string{name, env, def, usage})
	if err := set(def); err != nil {
		panic(fmt.Sprintf("default of -%s: %v", name, err)) // a programming error
	}
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

func (s *settings) str(p *string, name, env, def, usage string) {
	s.bind(name, env, def, usage, func(v string) error { *p = v; return nil }, func() string { return *p })
}

func (s *settings) integer(p *int, name, env string, def int, usage string) {
	s.bind(name, env, strconv.Itoa(def), usage, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = n
		return nil
	}, func() string { return strconv.Itoa(*p) })
}

func (s *settings) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.bind(name, env, def.String(), usage, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 200ms, 24h)")
		}
		*p = d
		return nil
	}, func() string { return p.String() })
}

func (s *settings) boolean(p *bool, name, env string, def bool, usage string) {
	s.bind(name, env, strconv.FormatBool(def), usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean (true or false)")
		}
		*p = b
		return nil
	}, func() string { return strconv.FormatBool(*p) })
}

func (s *settings) float(p *float64, name, env string, def float64, usage string) {
	s.bind(name, env, strconv.FormatFloat(def, 'g', -1, 64), usage, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		*p = f
		return nil
	}, func() string { return strconv.FormatFloat(*p, 'g', -1, 64) })
}

// millis is a duration given in milliseconds, as Zipkin's QUERY_LOOKBACK
// and ZIPKIN_UI_DEFAULT_LOOKBACK are.
func (s *settings) millis(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.bind(name, env, strconv.FormatInt(def.Milliseconds(), 10), usage, func(v string) error {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return fmt.Errorf("not a positive number of milliseconds")
		}
		*p = time.Duration(ms) * time.Millisecond
		return nil
	}, func() string { return strconv.FormatInt(p.Milliseconds(), 10) })
}

func (s *settings) list(p *[]string, name, env, def, usage string) {
	s.bind(name, env, def, usage, func(v string) error {
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
	if len(s.errs) > 0 {
		return fmt.Errorf("configuration: %v", s.errs)
	}
	return nil
}

// The option groups; each subcommand binds the ones it uses.

func bindLog(s *settings, level, format *string) {
	s.str(level, "log-level", "ZIPQ_LOG_LEVEL", "info", "debug, info, warn or error")
	s.str(format, "log-format", "ZIPQ_LOG_FORMAT", "text", "text or json")
}

func bindRabbit(s *settings, c *collector.Config) {
	s.str(&c.URL, "rabbit-uri", "RABBIT_URI", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URI")
	s.bind("rabbit-addresses", "RABBIT_ADDRESSES", "", "comma-separated host:port of RabbitMQ nodes; connect to any reachable one, with RABBIT_URI's user, password and vhost", func(v string) error {
		c.Addresses = collector.SplitAddresses(v)
		return nil
	}, func() string { return strings.Join(c.Addresses, ",") })
	s.str(&c.Queue, "rabbit-queue", "RABBIT_QUEUE", "zipkin", "queue spans are read from")
	s.str(&c.ParkedQueue, "rabbit-parked-queue", "RABBIT_PARKED_QUEUE", "", "parking queue for messages that cannot be stored (default <queue>.parked)")
	s.str(&c.ParkedQueueType, "rabbit-parked-queue-type", "RABBIT_PARKED_QUEUE_TYPE", "quorum", "x-queue-type of the parking queue: quorum or classic")
	s.bind("sample-rate", "COLLECTOR_SAMPLE_RATE", "1", "share of traces kept, in (0, 1], by trace ID (AMQP and HTTP ingest)", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			return fmt.Errorf("want a number in (0, 1]")
		}
		c.SampleRate = f
		return nil
	}, func() string { return strconv.FormatFloat(c.SampleRate, 'g', -1, 64) })
}

func bindCollector(s *settings, c *collector.Config) {
	s.integer(&c.Concurrency, "rabbit-concurrency", "RABBIT_CONCURRENCY", 1, "consumers (channels) per collector process")
	s.integer(&c.Prefetch, "rabbit-prefetch", "RABBIT_PREFETCH", 0, "unacked messages per consumer; 0 sizes it by -collector-window-bytes")
	s.integer(&c.WindowBytes, "collector-window-bytes", "COLLECTOR_WINDOW_BYTES", 16<<20, "unacked bytes per consumer the prefetch count is sized for (when -rabbit-prefetch is 0); bounds memory")
	s.integer(&c.BatchSpans, "batch-spans", "COLLECTOR_BATCH_SPANS", 5000, "write a batch at this many spans")
	s.duration(&c.BatchInterval, "batch-interval", "COLLECTOR_BATCH_INTERVAL", 200*time.Millisecond, "or after this long")
	s.integer(&c.MaxMessageBytes, "max-message-bytes", "COLLECTOR_MAX_MESSAGE_BYTES", 5<<20, "larger messages are parked as too_large")
	s.duration(&c.StopTimeout, "stop-timeout", "ZIPQ_STOP_TIMEOUT", 30*time.Second, "on SIGTERM, how long to wait for the last batch to commit")
}

func bindPostgres(s *settings, c *storage.Config) {
	s.str(&c.URL, "postgres-url", "POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/zipq?sslmode=disable", "PostgreSQL connection string")
	s.bind("postgres-max-conns", "POSTGRES_MAX_CONNS", "8", "connection pool size", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return fmt.Errorf("not a positive integer")
		}
		c.MaxConns = int32(n)
		return nil
	}, func() string { return strconv.Itoa(int(c.MaxConns)) })
	s.duration(&c.Retention, "retention", "ZIPQ_RETENTION", 7*24*time.Hour, "keep spans this long; older daily partitions are dropped")
	s.integer(&c.PartitionsAhead, "partitions-ahead", "ZIPQ_PARTITIONS_AHEAD", 2, "daily partitions created ahead of time")
	s.duration(&c.LinkInterval, "link-interval", "ZIPQ_LINK_INTERVAL", time.Second, "how often dependency links are brought up to date (collector, serve)")
	s.list(&c.AutocompleteKeys, "autocomplete-keys", "AUTOCOMPLETE_KEYS", "", "comma-separated tag keys offered by /api/v2/autocompleteValues")
}

type httpConfig struct {
	addr, adminToken string
	pprof            bool
}

func bindHTTP(s *settings, c *httpConfig) {
	def := "127.0.0.1:9411"
	if p := os.Getenv("QUERY_PORT"); p != "" {
		def = "127.0.0.1:" + p
	}
	s.str(&c.addr, "http-addr", "ZIPQ_HTTP_ADDR", def, "listen address of the API, UI, /health and /metrics (QUERY_PORT sets the port alone)")
	s.str(&c.adminToken, "admin-token", "ZIPQ_ADMIN_TOKEN", "", "bearer token for /admin/replay; empty disables admin endpoints")
	s.boolean(&c.pprof, "pprof", "ZIPQ_PPROF", false, "serve Go profiles at /debug/pprof (for benchmarks; do not expose)")
}

// apiConfig is the query API's own settings.
type apiConfig struct {
	strict     bool
	lookback   time.Duration
	origins    []string
	ui         query.UIConfig
	uiLookback time.Duration
}

func bindAPI(s *settings, c *apiConfig) {
	s.boolean(&c.strict, "strict-trace-id", "STRICT_TRACE_ID", true, "false: find 128-bit traces by their lower 64 bits and merge traces differing only in the high bits")
	s.millis(&c.lookback, "query-lookback", "QUERY_LOOKBACK", 24*time.Hour, "default lookback of /api/v2/traces and /dependencies, in milliseconds")
	s.list(&c.origins, "query-allowed-origins", "QUERY_ALLOWED_ORIGINS", "*", "CORS origins allowed on /api/v2 (comma-separated)")
	s.str(&c.ui.Environment, "ui-environment", "ZIPKIN_UI_ENVIRONMENT", "", "environment name shown by the UI")
	s.integer(&c.ui.QueryLimit, "ui-query-limit", "ZIPKIN_UI_QUERY_LIMIT", 10, "default result limit of the UI's search")
	s.millis(&c.uiLookback, "ui-default-lookback", "ZIPKIN_UI_DEFAULT_LOOKBACK", 15*time.Minute, "default lookback of the UI's search, in milliseconds")
	s.boolean(&c.ui.SearchEnabled, "ui-search-enabled", "ZIPKIN_UI_SEARCH_ENABLED", true, "show the search form in the UI")
	s.boolean(&c.ui.Dependency.Enabled, "ui-dependency-enabled", "ZIPKIN_UI_DEPENDENCY_ENABLED", true, "show the dependency graph in the UI")
	s.float(&c.ui.Dependency.LowErrorRate, "ui-dependency-low-error-rate", "ZIPKIN_UI_DEPENDENCY_LOW_ERROR_RATE", 0.5, "error rate from which an edge is drawn amber")
	s.float(&c.ui.Dependency.HighErrorRate, "ui-dependency-high-error-rate", "ZIPKIN_UI_DEPENDENCY_HIGH_ERROR_RATE", 0.75, "error rate from which an edge is drawn red")
}

func bindSelfTracing(s *settings, enabled *bool) {
	s.boolean(enabled, "self-tracing", "SELF_TRACING_ENABLED", false, "trace zipq's own API requests and batch writes, stored as service zipq")
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
