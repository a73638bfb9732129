// Package storage is zipq's PostgreSQL store and the only package with SQL:
// the pgx pool, the idempotent COPY writer, the reads the Zipkin API needs,
// daily partitions and retention, and migrations (goose over migrations/).
//
// The collector and the query API see it only through small interfaces they
// declare themselves; storage returns the concrete *Store.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zipq/zipq/zipkin"
)

// Config configures the store. DefaultConfig is the one source of its
// defaults; zero fields but URL take them when the store opens.
type Config struct {
	// URL is a PostgreSQL connection string (libpq URL or key=value). A
	// search_path parameter selects the schema, as the tests do.
	URL string
	// MaxConns bounds the pool.
	MaxConns int32
	// Retention is how long spans are kept: whole daily partitions older
	// than this are dropped.
	Retention time.Duration
	// RetentionBytes, when positive, bounds the bytes the schema takes:
	// past it, whole daily partitions are dropped oldest first (never
	// today's), whatever Retention allows.
	RetentionBytes int64
	// PartitionsAhead is how many future daily partitions are kept ready,
	// so a collector never waits on DDL at midnight.
	PartitionsAhead int
	// AutocompleteKeys are the tag keys whose values are kept for
	// /api/v2/autocompleteValues (Zipkin's AUTOCOMPLETE_KEYS).
	AutocompleteKeys []string
	// LinkInterval is how often RunLinker (dependency links) and
	// RunCompactor look for queued traces, and RunStats for rows to fold.
	LinkInterval time.Duration
	// StatsRetention is how long the service metrics (span_stats) are
	// kept: longer than the spans, at hourly resolution after a day.
	StatsRetention time.Duration
	// Keep is the keep-by-value policy (ParseThinPolicy: "errors,
	// slow=p99,rare=100,sample=10%"); empty: every trace is kept for the
	// whole Retention.
	Keep string
	// KeepAfter is how long past the end of its day every trace is kept
	// whole before Keep thins the day.
	KeepAfter time.Duration
	// PackAfter is how long past the end of its day the day's traces are
	// packed into blocks (pack.go): long enough for late spans and the
	// linker. Below 0: never packed.
	PackAfter time.Duration
	// NoStats turns off counting the service metrics as spans are
	// written (benchmarks compare the two).
	NoStats bool
	// StatsCacheBytes bounds the memory of the strips reads keep decoded
	// (stripcache.go); negative: none kept.
	StatsCacheBytes int64
	// Columns encodes each write's spans as columns for TraceQL scans
	// (columns.go; ingest.SpanColumns). Nil: no columns are written and
	// scans read whole traces. Every process writing or reading a schema
	// sets it alike.
	Columns ColumnEncoder
}

// DefaultConfig is the store's defaults.
func DefaultConfig() Config {
	return Config{
		URL:             "postgres://postgres:postgres@127.0.0.1:5432/zipq?sslmode=disable",
		MaxConns:        8,
		Retention:       7 * 24 * time.Hour,
		PartitionsAhead: 2,
		LinkInterval:    time.Second,
		StatsRetention:  30 * 24 * time.Hour,
		KeepAfter:       24 * time.Hour,
		PackAfter:       2 * time.Hour,
		StatsCacheBytes: 32 << 20,
	}
}

func (c *Config) withDefaults() {
	d := DefaultConfig()
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.LinkInterval == 0 {
		c.LinkInterval = d.LinkInterval
	}
	if c.PartitionsAhead == 0 {
		c.PartitionsAhead = d.PartitionsAhead
	}
	if c.StatsRetention == 0 {
		c.StatsRetention = d.StatsRetention
	}
	if c.KeepAfter == 0 {
		c.KeepAfter = d.KeepAfter
	}
	if c.StatsCacheBytes == 0 {
		c.StatsCacheBytes = d.StatsCacheBytes
	}
	if c.PackAfter == 0 {
		c.PackAfter = d.PackAfter
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("postgres url: %w", err))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("max conns %d: want at least 1", c.MaxConns))
	}
	if c.Retention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("retention %v: want at least 24h (spans are kept in daily partitions)", c.Retention))
	}
	if c.RetentionBytes < 0 {
		errs = append(errs, fmt.Errorf("retention bytes %d: want 0 (no budget) or more", c.RetentionBytes))
	}
	if c.StatsRetention < statsHourlyAfter {
		errs = append(errs, fmt.Errorf("stats retention %v: want at least %v (minutes are rolled up to hours after that)", c.StatsRetention, statsHourlyAfter))
	}
	if c.PartitionsAhead < 1 {
		errs = append(errs, fmt.Errorf("partitions ahead %d: want at least 1", c.PartitionsAhead))
	}
	if _, on, err := ParseThinPolicy(c.Keep); err != nil {
		errs = append(errs, err)
	} else if on && (c.KeepAfter < time.Hour || c.KeepAfter+24*time.Hour >= c.Retention) {
		errs = append(errs, fmt.Errorf("keep after %v: want at least 1h, and less than the retention (%v) less a day, or no day is ever thinned", c.KeepAfter, c.Retention))
	}
	if c.PackAfter >= 0 && c.PackAfter < time.Hour {
		errs = append(errs, fmt.Errorf("pack after %v: want at least 1h (late spans and the dependency links of the day come first), or below 0 to never pack", c.PackAfter))
	}
	if c.LinkInterval <= 0 {
		errs = append(errs, fmt.Errorf("link interval %v: want a positive duration", c.LinkInterval))
	}
	return errors.Join(errs...)
}

// Store is a connection pool plus the statements zipq runs.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	logger *slog.Logger
	// traceReads admits reads of whole traces (searches and trace by ID)
	// to at most half the pool: the pool hands out connections first come
	// first served, so without it 30 concurrent large searches queue ahead
	// of every cheap read and of the collector's writes, which then wait
	// seconds for a connection.
	traceReads  chan struct{}
	observer    Observer
	tenantIDs   sync.Map // tenant name → its number (tenants.go)
	tenantNames sync.Map // and back
	// tenantRetention keeps named tenants' spans for less than Retention.
	tenantRetention map[string]time.Duration
	// tenantBudgets bound named tenants' bytes (budget.go).
	tenantBudgets map[string]int64
	// traceLimits bounds the spans of one trace, by tenant name.
	traceLimits map[string]int
	// codec writes new segments (dicts.go); nil: the shipped dictionary.
	codec atomic.Pointer[segmentCodec]
	// usage is what the last maintenance round measured (partitions.go).
	usage atomic.Pointer[Usage]
	// keep is Config.Keep parsed; nil: off (thin.go).
	keep      *ThinPolicy
	onThinned func([]ThinCount)
	// noStrips reads service totals from span_stats alone: the oracle
	// the strips' reads are tested against.
	noStrips bool
	// packRows overrides packPage (pack.go) when above 0: tests page a
	// day a few rows at a time.
	packRows int
	// strips keeps the strips reads decoded; nil: none kept.
	strips *stripCache
}

// Observer is told, after each commit, what it added: the spans a write
// newly counted in the service metrics (as span_stats counted them: none
// twice, pieces of one span merged), and the calls and errors a linker
// round added to the dependency links (edges whose totals only fell are
// left out). Both are called from the committing goroutine and must not
// block.
type Observer interface {
	SpansCounted(tenant string, spans []*zipkin.Span)
	LinksAdded(tenant string, links []zipkin.DependencyLink)
}

// SetTenantRetention keeps the named tenants' spans only this long
// (ZIPQ_TENANTS_FILE's retention=), when shorter than Retention; call it
// before RunMaintenance.
func (s *Store) SetTenantRetention(keep map[string]time.Duration) { s.tenantRetention = keep }

// SetTenantBudgets bounds the bytes the named tenants' spans may take
// (ZIPQ_TENANTS_FILE's retention_bytes): past it, a tenant's oldest days
// are deleted at maintenance. The bytes are counted from the service
// metrics (budget.go): they must be counted (not NoStats) and kept as long
// as the spans (StatsRetention), else it is an error. Call it before
// RunMaintenance.
func (s *Store) SetTenantBudgets(bytes map[string]int64) error {
	if len(bytes) == 0 {
		return nil
	}
	switch {
	case s.cfg.NoStats:
		return errors.New("a tenant's retention_bytes is counted from the service metrics: not with ZIPQ_NO_SERVICE_METRICS")
	case s.cfg.StatsRetention < s.cfg.Retention:
		return fmt.Errorf("a tenant's retention_bytes is counted from the service metrics: ZIPQ_STATS_RETENTION (%v) must be at least ZIPQ_RETENTION (%v)",
			s.cfg.StatsRetention, s.cfg.Retention)
	}
	s.tenantBudgets = bytes
	return nil
}

// SetTraceLimits bounds the spans one trace of the named tenants may hold
// (ZIPQ_TENANTS_FILE's max_trace_spans); call it before any write.
func (s *Store) SetTraceLimits(spans map[string]int) { s.traceLimits = spans }

// SetObserver sets o as the store's observer; call it before any write.
func (s *Store) SetObserver(o Observer) { s.observer = o }

// Open connects a pool; it does not migrate (see Migrate).
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	keep, on, err := ParseThinPolicy(cfg.Keep)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	s := &Store{pool: pool, cfg: cfg, logger: logger, traceReads: make(chan struct{}, max(1, cfg.MaxConns/2)),
		strips: newStripCache(cfg.StatsCacheBytes)}
	if on {
		s.keep = &keep
	}
	return s, nil
}

// AutocompleteKeys are the tag keys whose values are recorded.
func (s *Store) AutocompleteKeys() []string { return s.cfg.AutocompleteKeys }

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that PostgreSQL answers, for /health.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// DataError is a batch that PostgreSQL refused for what it holds, not for
// being unreachable: retrying it unchanged would fail forever. The collector
// finds the message responsible and parks it.
type DataError struct{ Err error }

func (e *DataError) Error() string { return "postgres rejected the data: " + e.Err.Error() }
func (e *DataError) Unwrap() error { return e.Err }

// Permanent marks the error as not worth retrying as it is.
func (e *DataError) Permanent() bool { return true }

// classify wraps errors whose SQLSTATE says the data is at fault: class 22
// (data exception), 23 (integrity) and 54 (program limit, e.g. an index row
// too large). Everything else — connection loss, shutdown, serialization —
// is transient and retried.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22", "23", "54":
			return &DataError{Err: err}
		}
	}
	return err
}
