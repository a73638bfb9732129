// Package collector moves spans from RabbitMQ into committed storage: a pool
// of consumers with manual acks and bounded prefetch, a size/time batcher
// that pushes back instead of growing, writes through SpanWriter, acks only
// after commit, and parks what cannot be stored (with its reason) through
// the broker package.
package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/zipkin"
)

// SpanWriter is what the collector needs from storage.
type SpanWriter interface {
	// WriteSpans stores spans idempotently (writing the same spans twice
	// stores them once) and returns nil only after they are committed. An
	// error with a Permanent() bool method returning true means the data
	// itself was refused and retrying it unchanged cannot succeed.
	WriteSpans(ctx context.Context, spans []zipkin.Span) error
}

// RedeliveryWriter is implemented by a SpanWriter that derives something
// at ingest which must not count a span twice (storage's service metrics):
// WriteRedelivered has WriteSpans' contract for the spans of messages
// RabbitMQ redelivered, which a batch may have committed already before
// its ack was lost.
type RedeliveryWriter interface {
	WriteRedelivered(ctx context.Context, spans []zipkin.Span) error
}

// MessageDecoder turns one queue message into the spans to store
// (ingest.Limits.DecodeMessage): within the size limit, by content type,
// sampled, names capped; the tally counts what it left out or cut. An
// error is a *zipkin.DecodeError whose reason the message is parked under.
// Declared here so the collector does not depend on how the edge decodes
// (OTLP's translation lives in ingest).
type MessageDecoder interface {
	DecodeMessage(body []byte, contentType, contentEncoding string) (kept []zipkin.Span, tally zipkin.Tally, err error)
}

// Preparer is implemented by a SpanWriter whose writes start with
// CPU-bound encoding: the collector then encodes a batch on the goroutine
// that consumes (PrepareWrite) and only commits it on the one that writes
// (the returned func), so one batch encodes while the previous one is
// being written. The func has WriteSpans' contract.
type Preparer interface {
	PrepareWrite(spans []zipkin.Span) (func(ctx context.Context) error, error)
}

// Config configures a collector. Zero fields take DefaultConfig's values
// (WithDefaults).
type Config struct {
	Broker broker.Config // where the span and parking queues are
	// Tenant is whose spans the queue holds ("": the default tenant):
	// every write and read the collector makes acts for it.
	Tenant      string
	Concurrency int // RABBIT_CONCURRENCY: consumers (channels) per process
	// Prefetch is a fixed count of unacked messages per consumer; zero
	// (the default) sizes it by WindowBytes instead.
	Prefetch int
	// WindowBytes is how many bytes of unacked messages one consumer aims
	// to hold when Prefetch is zero: its prefetch count is resized to
	// WindowBytes / the average message size (100…65,535), so one-span
	// messages fill 5,000-span batches as well as 100-span messages do,
	// and memory stays near WindowBytes.
	WindowBytes   int
	BatchSpans    int           // flush at this many spans
	BatchInterval time.Duration // or after this long
	StopTimeout   time.Duration // how long Stop waits for the last commit
	RetryMin      time.Duration // first storage retry delay
	RetryMax      time.Duration // longest storage retry / reconnect delay
	// StallAfter is how long messages may wait with no batch committed
	// before the writer counts as stalled (Stalled, /health degraded).
	StallAfter time.Duration
}

// DefaultConfig is the one source of the collector's defaults; the
// command line binds its flags from it.
func DefaultConfig() Config {
	return Config{
		Broker:        broker.DefaultConfig(),
		Concurrency:   1,
		WindowBytes:   16 << 20,
		BatchSpans:    5000,
		BatchInterval: 200 * time.Millisecond,
		StopTimeout:   30 * time.Second,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      10 * time.Second,
		StallAfter:    30 * time.Second,
	}
}

// WithDefaults returns c with every zero field set from DefaultConfig
// (Prefetch's zero is itself meaningful).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.Broker = c.Broker.WithDefaults()
	orInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	orDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	orInt(&c.Concurrency, d.Concurrency)
	orInt(&c.WindowBytes, d.WindowBytes)
	orInt(&c.BatchSpans, d.BatchSpans)
	orDur(&c.BatchInterval, d.BatchInterval)
	orDur(&c.StopTimeout, d.StopTimeout)
	orDur(&c.RetryMin, d.RetryMin)
	orDur(&c.RetryMax, d.RetryMax)
	orDur(&c.StallAfter, d.StallAfter)
	return c
}

// Validate reports every problem at once (after WithDefaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	errs := []error{c.Broker.Validate()}
	positive := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: want a positive number", name, v))
		}
	}
	positive("concurrency", c.Concurrency)
	positive("window bytes", c.WindowBytes)
	positive("batch spans", c.BatchSpans)
	for name, d := range map[string]time.Duration{"batch interval": c.BatchInterval, "stop timeout": c.StopTimeout,
		"retry min": c.RetryMin, "retry max": c.RetryMax, "stall after": c.StallAfter} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v: want a positive duration", name, d))
		}
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("prefetch %d: want 0 (sized by the window) up to 65535, RabbitMQ's maximum", c.Prefetch))
	}
	return errors.Join(errs...)
}
