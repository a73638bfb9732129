// Package collector moves spans from RabbitMQ into committed storage: a pool
// of consumers with manual acks and bounded prefetch, a size/time batcher
// that pushes back instead of growing, writes through SpanWriter, acks only
// after commit, and parks what cannot be stored (with its reason) in a
// parking queue that Replay drains back.
package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Preparer is implemented by a SpanWriter whose writes start with
// CPU-bound encoding: the collector then encodes a batch on the goroutine
// that consumes (PrepareWrite) and only commits it on the one that writes
// (the returned func), so one batch encodes while the previous one is
// being written. The func has WriteSpans' contract.
type Preparer interface {
	PrepareWrite(spans []zipkin.Span) (func(ctx context.Context) error, error)
}

// Exchange is the durable direct exchange zipkin-go's reporter declares
// and publishes to; the queue is bound to it with its own name as key.
const Exchange = "zipkin"

// Config configures a collector. Zero fields take the defaults below.
type Config struct {
	URL string // RABBIT_URI
	// Addresses (Zipkin's RABBIT_ADDRESSES) are a cluster's nodes, as
	// host:port: connections go to any reachable one, with URL's user,
	// password and vhost. Empty: URL's host.
	Addresses       []string
	Queue           string // RABBIT_QUEUE, default "zipkin"
	ParkedQueue     string // default Queue + ".parked"
	ParkedQueueType string // x-queue-type of the parking queue: "quorum" (default) or "classic"
	Concurrency     int    // RABBIT_CONCURRENCY: consumers (channels) per process, default 1
	// Prefetch is a fixed count of unacked messages per consumer; zero
	// (the default) sizes it by WindowBytes instead.
	Prefetch int
	// WindowBytes is how many bytes of unacked messages one consumer aims
	// to hold when Prefetch is zero: its prefetch count is resized to
	// WindowBytes / the average message size (100…65,535), so one-span
	// messages fill 5,000-span batches as well as 100-span messages do,
	// and memory stays near WindowBytes. Default 16 MiB.
	WindowBytes     int
	BatchSpans      int           // flush at this many spans, default 5000
	BatchInterval   time.Duration // or after this long, default 200ms
	MaxMessageBytes int           // larger messages are parked as too_large, default 5 MiB
	StopTimeout     time.Duration // how long Stop waits for the last commit, default 30s
	RetryMin        time.Duration // first storage retry delay, default 100ms
	RetryMax        time.Duration // longest storage retry / reconnect delay, default 10s
	// SampleRate is COLLECTOR_SAMPLE_RATE: the share of traces kept, in
	// (0, 1], decided by trace ID so a trace is kept or dropped whole
	// (zipkin.Sampled); debug spans are always kept. Zero means 1.
	SampleRate float64
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	set := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	if c.URL == "" {
		c.URL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if c.Queue == "" {
		c.Queue = "zipkin"
	}
	if c.ParkedQueue == "" {
		c.ParkedQueue = c.Queue + ".parked"
	}
	if c.ParkedQueueType == "" {
		c.ParkedQueueType = "quorum"
	}
	set(&c.Concurrency, 1)
	set(&c.WindowBytes, 16<<20)
	set(&c.BatchSpans, 5000)
	set(&c.MaxMessageBytes, 5<<20)
	setD(&c.BatchInterval, 200*time.Millisecond)
	setD(&c.StopTimeout, 30*time.Second)
	setD(&c.RetryMin, 100*time.Millisecond)
	setD(&c.RetryMax, 10*time.Second)
	if c.SampleRate == 0 {
		c.SampleRate = 1
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	for _, a := range c.Addresses {
		if err := validAddress(a); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Queue == c.ParkedQueue {
		errs = append(errs, fmt.Errorf("parked queue must differ from the queue %q", c.Queue))
	}
	if c.ParkedQueueType != "quorum" && c.ParkedQueueType != "classic" {
		errs = append(errs, fmt.Errorf("parked queue type %q: want quorum or classic", c.ParkedQueueType))
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("prefetch %d: want 0 (sized by the window) up to 65535, RabbitMQ's maximum", c.Prefetch))
	}
	if c.SampleRate < 0 || c.SampleRate > 1 {
		errs = append(errs, fmt.Errorf("sample rate %v: want a value in (0, 1]", c.SampleRate))
	}
	return errors.Join(errs...)
}

// Sample keeps the spans of sampled traces, in place.
func (c Config) Sample(spans []zipkin.Span) []zipkin.Span {
	if c.SampleRate >= 1 {
		return spans
	}
	kept := spans[:0]
	for _, sp := range spans {
		if zipkin.Sampled(sp.TraceID, sp.Debug, c.SampleRate) {
			kept = append(kept, sp)
		}
	}
	return kept
}
