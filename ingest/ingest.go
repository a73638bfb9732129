// Package ingest owns every way spans enter zipq: Zipkin JSON v2 and
// proto3 over HTTP (POST /api/v2/spans), OTLP over HTTP (POST /v1/traces)
// and gRPC (TraceService/Export), and a span-queue message of any accepted
// format (DecodeMessage, which the collector calls for each delivery).
//
// Every path takes the same Limits, publishes through one Publisher with a
// broker confirm (202/200 means RabbitMQ holds the spans), and maps the
// same three outcomes in one place (answer.go): too large (413,
// RESOURCE_EXHAUSTED), unavailable (503 + Retry-After, UNAVAILABLE +
// RetryInfo) and invalid (400, INVALID_ARGUMENT).
//
// It is the only package that imports OpenTelemetry (pdata and the
// Collector's Zipkin translator): the rest of zipq sees Zipkin spans only
// (imports_test.go checks it).
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// Limits are what every path into the pipeline accepts, HTTP, gRPC and
// AMQP alike: a body the collector would park as too large is refused at
// the edge, and sampling decides the same way everywhere.
type Limits struct {
	// MaxBytes bounds a request body or queue message, before and after
	// decompression (COLLECTOR_MAX_MESSAGE_BYTES).
	MaxBytes int
	// SampleRate is COLLECTOR_SAMPLE_RATE: the share of traces kept, in
	// (0, 1], decided by trace ID (zipkin.Sampled) so a trace is kept or
	// dropped whole by every process; debug spans are always kept.
	SampleRate float64
	// MaxExpandedTags and MaxExpandedBytes bound what an OTLP request or
	// message becomes once translated: every resource and scope attribute
	// is copied into each of its spans' tags, so a 69 KB request of 1,000
	// spans × 1,000 resource attributes is a million tags (280 MB).
	// Checked before translating; over either, the whole request is
	// refused as too large (413, RESOURCE_EXHAUSTED, parked too_large).
	MaxExpandedTags  int
	MaxExpandedBytes int
}

// DefaultLimits is the one source of the limits' defaults.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 5 << 20, SampleRate: 1, MaxExpandedTags: 200_000, MaxExpandedBytes: 32 << 20}
}

// Validate reports every problem at once.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("max message bytes %d: want a positive size", l.MaxBytes))
	}
	if l.SampleRate <= 0 || l.SampleRate > 1 {
		errs = append(errs, fmt.Errorf("sample rate %v: want a value in (0, 1]", l.SampleRate))
	}
	if l.MaxExpandedTags <= 0 || l.MaxExpandedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max expanded tags %d, bytes %d: want positive numbers", l.MaxExpandedTags, l.MaxExpandedBytes))
	}
	return errors.Join(errs...)
}

// Config is the edge's settings: the limits, and the OTLP listeners.
type Config struct {
	Limits
	// OTLPHTTPAddr and OTLPGRPCAddr are where OTLP/HTTP and OTLP/gRPC
	// listen; "off" (or empty) switches one off.
	OTLPHTTPAddr, OTLPGRPCAddr string
	// QueueFormat is what an OTLP export puts on the queue: "zipkin"
	// (translated here, the default) or "otlp" (the request as it came,
	// translated by the collector) — the alternative docs/BENCHMARKS.md
	// measures.
	QueueFormat string
	// ConfirmTimeout bounds the wait for RabbitMQ's confirm: past it the
	// client is told to retry.
	ConfirmTimeout time.Duration
	// MaxInFlightBytes bounds the request bodies all HTTP and gRPC ingest
	// holds at once (decoding one costs a multiple of its size): a request
	// that does not fit is told to retry (429 or UNAVAILABLE, with
	// Retry-After / RetryInfo) instead of growing the heap.
	MaxInFlightBytes int
}

// DefaultConfig listens on OTLP's standard ports, on loopback like zipq's
// other ports.
func DefaultConfig() Config {
	return Config{Limits: DefaultLimits(), OTLPHTTPAddr: "127.0.0.1:4318", OTLPGRPCAddr: "127.0.0.1:4317",
		QueueFormat: "zipkin", ConfirmTimeout: 5 * time.Second, MaxInFlightBytes: 32 << 20}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	errs := []error{c.Limits.Validate()}
	if c.QueueFormat != "zipkin" && c.QueueFormat != "otlp" {
		errs = append(errs, fmt.Errorf("otlp queue format %q: want zipkin or otlp", c.QueueFormat))
	}
	if c.ConfirmTimeout <= 0 {
		errs = append(errs, fmt.Errorf("otlp confirm timeout %v: want a positive duration", c.ConfirmTimeout))
	}
	if c.MaxInFlightBytes < c.MaxBytes {
		errs = append(errs, fmt.Errorf("max in-flight bytes %d: want at least one body's %d", c.MaxInFlightBytes, c.MaxBytes))
	}
	return errors.Join(errs...)
}

// Enabled reports whether a listen address switches its receiver on.
func Enabled(addr string) bool { return addr != "" && addr != "off" }

// Publisher hands a span message to the span queue and returns only once
// the broker confirmed it (broker.Publisher); an error means nothing was
// accepted and the client should retry.
type Publisher interface {
	Publish(ctx context.Context, body []byte, contentType string) error
}

// Limiter meters the ingest of the tenant a request acts for
// (tenant.Meters): Allow spends spans and bytes of its budget, or says
// how long until it could.
type Limiter interface {
	Allow(ctx context.Context, spans, bytes int) (retryAfter time.Duration, ok bool)
}

// LimitedError is a request over its tenant's ingest limit: the client
// should retry after RetryAfter (429, RESOURCE_EXHAUSTED with RetryInfo).
type LimitedError struct{ RetryAfter time.Duration }

func (e *LimitedError) Error() string {
	return fmt.Sprintf("the tenant's ingest limit is reached; retry in %s", e.RetryAfter)
}

// ErrUnavailable is a publish the broker did not confirm: the client
// should retry (503, UNAVAILABLE).
var ErrUnavailable = errors.New("the span queue is unavailable; retry")

// ErrBusy is a request refused because ingest holds MaxInFlightBytes of
// bodies already: the client should retry (429, UNAVAILABLE).
var ErrBusy = errors.New("zipq is ingesting as much as it takes at once; retry")

// DecodeMessage decodes one span-queue message as the collector stores
// it: larger than MaxBytes, before or after inflating a gzip
// content encoding, is too_large (any other encoding, or gzip that does not
// inflate, is bad_encoding); an OTLP ExportTraceServiceRequest
// when the content type names one, else a Zipkin span list detected from
// the body (the content type of Zipkin clients is not reliable). The kept
// spans are sampled and their names capped (zipkin.MaxNameBytes); the
// tally counts the spans OTLP could not store, those sampling left out and
// those whose names were cut. An error is a *zipkin.DecodeError with the
// reason the message is parked under. Every way spans enter ends here
// before they are stored.
func (l Limits) DecodeMessage(body []byte, contentType, contentEncoding string) (kept []zipkin.Span, tally zipkin.Tally, err error) {
	if len(body) > l.MaxBytes {
		return nil, tally, &zipkin.DecodeError{Reason: zipkin.ReasonTooLarge, Span: -1,
			Err: fmt.Errorf("message is %d bytes, limit %d", len(body), l.MaxBytes)}
	}
	if contentEncoding != "" {
		if body, err = read(bytes.NewReader(body), contentEncoding, int64(l.MaxBytes)); err != nil {
			reason := zipkin.ReasonBadEncoding
			if errors.Is(err, ErrTooLarge) {
				reason = zipkin.ReasonTooLarge
			}
			return nil, tally, &zipkin.DecodeError{Reason: reason, Span: -1, Err: err}
		}
	}
	var spans []zipkin.Span
	if f, ok := OTLPContentType(contentType); ok {
		spans, tally.Rejected, err = l.DecodeOTLP(body, f)
	} else {
		spans, _, err = zipkin.Decode(body)
	}
	if err != nil {
		return nil, zipkin.Tally{}, err
	}
	kept = zipkin.Sample(spans, l.SampleRate)
	tally.SampledOut = len(spans) - len(kept)
	for i := range kept {
		if kept[i].CapNames() {
			tally.Truncated++
		}
	}
	return kept, tally, nil
}
