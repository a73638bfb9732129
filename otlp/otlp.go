// Package otlp is zipq's OpenTelemetry-native edge: OTLP/HTTP (POST
// /v1/traces, protobuf or JSON) and OTLP/gRPC (TraceService/Export)
// receivers. Each request is decoded and translated by the OpenTelemetry
// Collector's own Zipkin translator (zipkin.DecodeOTLP), sampled, and
// published to the span queue as a Zipkin proto3 span list with a
// publisher confirm: an exporter is told "exported" only once RabbitMQ
// holds the spans, and "retry" (HTTP 503, gRPC UNAVAILABLE with
// RetryInfo) when it does not, so a collector or database outage loses
// nothing, as for Zipkin's own clients.
//
// Translating at the edge, not in the collector: the edge must decode the
// request anyway to answer OTLP's partial success and to refuse garbage
// before saying "exported", so the collectors (the pipeline's bottleneck)
// never pay for OTLP twice; and a Zipkin proto3 list is smaller on the
// queue than the OTLP request it came from (docs/BENCHMARKS.md, "OTLP").
// OTLP published straight to the queue by a service is translated by the
// collector (zipkin.DecodeMessage).
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/zipq/zipq/zipkin"
)

// SpanPublisher hands a span list to the span queue and returns only once
// the broker confirmed it; errors mean nothing was accepted and the client
// should retry.
type SpanPublisher interface {
	Publish(ctx context.Context, body []byte, contentType string) error
}

// Config is the OTLP receivers' settings; DefaultConfig is their one
// source.
type Config struct {
	// HTTPAddr and GRPCAddr are where OTLP/HTTP and OTLP/gRPC listen;
	// "off" (or empty) switches one off.
	HTTPAddr, GRPCAddr string
	// MaxBytes bounds a request body (HTTP: before and after gunzip, 413;
	// gRPC: the decompressed message, RESOURCE_EXHAUSTED).
	MaxBytes int
	// SampleRate is COLLECTOR_SAMPLE_RATE, as for Zipkin ingest.
	SampleRate float64
	// QueueFormat is what goes on the queue: "zipkin" (translated here,
	// the default) or "otlp" (the request as it came, translated by the
	// collector) — the alternative docs/BENCHMARKS.md measures.
	QueueFormat string
	// ConfirmTimeout bounds the wait for RabbitMQ's confirm: past it the
	// exporter is told to retry.
	ConfirmTimeout time.Duration
}

// DefaultConfig listens on OTLP's standard ports, on loopback like
// zipq's other ports.
func DefaultConfig() Config {
	return Config{HTTPAddr: "127.0.0.1:4318", GRPCAddr: "127.0.0.1:4317", MaxBytes: 5 << 20, SampleRate: 1,
		QueueFormat: "zipkin", ConfirmTimeout: 5 * time.Second}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("otlp max bytes %d: want a positive size", c.MaxBytes))
	}
	if c.SampleRate <= 0 || c.SampleRate > 1 {
		errs = append(errs, fmt.Errorf("sample rate %v: want a value in (0, 1]", c.SampleRate))
	}
	if c.QueueFormat != "zipkin" && c.QueueFormat != "otlp" {
		errs = append(errs, fmt.Errorf("otlp queue format %q: want zipkin or otlp", c.QueueFormat))
	}
	if c.ConfirmTimeout <= 0 {
		errs = append(errs, fmt.Errorf("otlp confirm timeout %v: want a positive duration", c.ConfirmTimeout))
	}
	return errors.Join(errs...)
}

// Enabled reports whether an address switches its receiver on.
func Enabled(addr string) bool { return addr != "" && addr != "off" }

// Receiver is what both transports share: translate, sample, publish,
// count. HTTPHandler and GRPCServer serve it.
type Receiver struct {
	cfg   Config
	pub   SpanPublisher
	log   *slog.Logger
	spans *prometheus.CounterVec
	reqs  *prometheus.CounterVec
}

// New returns a receiver publishing through pub; reg (may be nil) gets
// its metrics.
func New(cfg Config, pub SpanPublisher, log *slog.Logger, reg prometheus.Registerer) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, pub: pub, log: log,
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_otlp_spans_total",
			Help: "Spans in OTLP export requests, by protocol (http, grpc) and outcome (accepted, rejected, sampled_out)."},
			[]string{"protocol", "outcome"}),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_otlp_requests_total",
			Help: "OTLP export requests by protocol and result (ok, partial, invalid, too_large, unsupported, unavailable)."},
			[]string{"protocol", "result"}),
	}
	if reg != nil {
		reg.MustRegister(r.spans, r.reqs)
	}
	return r
}

// errUnavailable wraps a publish failure: retry later.
type errUnavailable struct{ err error }

func (e errUnavailable) Error() string { return "the span queue is unavailable: " + e.err.Error() }
func (e errUnavailable) Unwrap() error { return e.err }

// export translates and publishes one request, and counts its result; it
// returns how many spans it rejected (partial success). An errUnavailable
// means the request should be retried, any other error that it is
// invalid.
func (r *Receiver) export(ctx context.Context, protocol string, body []byte, f zipkin.OTLPFormat) (int, error) {
	rejected, err := r.translateAndPublish(ctx, protocol, body, f)
	var unavailable errUnavailable
	result := "ok"
	switch {
	case errors.As(err, &unavailable):
		result = "unavailable"
		r.log.Warn("otlp export refused: queue unavailable", slog.String("protocol", protocol), slog.Any("err", err))
	case err != nil:
		result = "invalid"
	case rejected > 0:
		result = "partial"
	}
	r.reqs.WithLabelValues(protocol, result).Inc()
	return rejected, err
}

func (r *Receiver) translateAndPublish(ctx context.Context, protocol string, body []byte, f zipkin.OTLPFormat) (int, error) {
	spans, rejected, err := zipkin.DecodeOTLP(body, f)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConfirmTimeout)
	defer cancel()
	if r.cfg.QueueFormat == "otlp" {
		// As it came: the collector translates (and samples) it again.
		if err := r.pub.Publish(ctx, body, f.ContentType()); err != nil {
			return 0, errUnavailable{err}
		}
		r.spans.WithLabelValues(protocol, "accepted").Add(float64(len(spans)))
		r.spans.WithLabelValues(protocol, "rejected").Add(float64(rejected))
		return rejected, nil
	}
	n := len(spans)
	spans = zipkin.Sample(spans, r.cfg.SampleRate)
	if err := r.publish(ctx, spans); err != nil {
		return 0, err
	}
	r.spans.WithLabelValues(protocol, "accepted").Add(float64(len(spans)))
	r.spans.WithLabelValues(protocol, "sampled_out").Add(float64(n - len(spans)))
	r.spans.WithLabelValues(protocol, "rejected").Add(float64(rejected))
	return rejected, nil
}

// publish sends spans as Zipkin proto3 lists no larger than the
// collectors take (MaxBytes): resource attributes become every span's
// tags, so a request under the limit can translate to more bytes. Should
// a later part fail, the client retries the whole request and the store
// keeps each span once.
func (r *Receiver) publish(ctx context.Context, spans []zipkin.Span) error {
	if len(spans) == 0 {
		return nil
	}
	out, err := zipkin.EncodeProto(spans)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if len(out) > r.cfg.MaxBytes && len(spans) > 1 {
		half := len(spans) / 2
		if err := r.publish(ctx, spans[:half]); err != nil {
			return err
		}
		return r.publish(ctx, spans[half:])
	}
	if err := r.pub.Publish(ctx, out, "application/x-protobuf"); err != nil {
		return errUnavailable{err}
	}
	return nil
}

// answer is an exported request's response: a partial success when spans
// were rejected.
func answer(rejected int) ptraceotlp.ExportResponse {
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(strconv.Itoa(rejected) + " span(s) with an all-zero trace or span ID were rejected")
	}
	return resp
}
