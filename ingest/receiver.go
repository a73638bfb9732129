package ingest

// Translating OTLP at the edge, not in the collector: the edge must decode
// a request anyway to answer OTLP's partial success and to refuse garbage
// before saying "exported", so the collectors (the pipeline's bottleneck)
// never pay for OTLP twice; and a Zipkin proto3 list is smaller on the
// queue than the OTLP request it came from (docs/BENCHMARKS.md, "OTLP").
// OTLP published straight to the queue by a service is translated by the
// collector (DecodeMessage).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// Receiver is what every HTTP and gRPC edge shares: decode within the
// limits, sample, publish with a confirm, count. ZipkinHandler,
// OTLPHandler and GRPCServer serve it.
type Receiver struct {
	cfg      Config
	inflight *semaphore.Weighted // bytes of request bodies held (MaxInFlightBytes)
	pub      Publisher
	log      *slog.Logger
	spans    *prometheus.CounterVec
	reqs     *prometheus.CounterVec
	limiter  Limiter // nil: unlimited
	limited  *prometheus.CounterVec
}

// Limit meters every request's spans and bytes with l (before Serve).
func (r *Receiver) Limit(l Limiter) { r.limiter = l }

// admit spends a request's spans and bytes of its tenant's budget, or is
// a *LimitedError.
func (r *Receiver) admit(ctx context.Context, protocol string, spans, bytes int) error {
	if r.limiter == nil {
		return nil
	}
	if wait, ok := r.limiter.Allow(ctx, spans, bytes); !ok {
		r.limited.WithLabelValues(tenant.From(ctx), protocol).Inc()
		return &LimitedError{RetryAfter: wait}
	}
	return nil
}

// New returns a receiver publishing through pub; reg (may be nil) gets
// its metrics.
func New(cfg Config, pub Publisher, log *slog.Logger, reg prometheus.Registerer) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, inflight: semaphore.NewWeighted(int64(cfg.MaxInFlightBytes)), pub: pub, log: log,
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_otlp_spans_total",
			Help: "Spans in OTLP export requests, by protocol (http, grpc) and outcome (accepted, rejected, sampled_out)."},
			[]string{"protocol", "outcome"}),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_otlp_requests_total",
			Help: "OTLP export requests by protocol and result (ok, partial, invalid, too_large, unsupported, unavailable, limited)."},
			[]string{"protocol", "result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zipq_ingest_limited_total",
			Help: "HTTP and OTLP requests refused (429) for their tenant's ingest limit, by tenant and protocol (zipkin, http, grpc)."},
			[]string{"tenant", "protocol"}),
	}
	if reg != nil {
		reg.MustRegister(r.spans, r.reqs, r.limited)
	}
	return r
}

// exportOTLP translates and publishes one OTLP request, and counts its
// result; it returns how many spans it rejected (partial success).
func (r *Receiver) exportOTLP(ctx context.Context, protocol string, body []byte, f OTLPFormat) (int, error) {
	spans, rejected, err := r.cfg.DecodeOTLP(body, f)
	if err == nil {
		err = r.admit(ctx, protocol, len(spans), len(body))
	}
	if err == nil {
		var sampledOut int
		if r.cfg.QueueFormat == "otlp" {
			// As it came: the collector translates (and samples) it again.
			err = r.publish(ctx, body, f.ContentType())
		} else {
			sampledOut, err = r.publishSpans(ctx, spans, nil, "")
		}
		if err == nil {
			r.spans.WithLabelValues(protocol, "accepted").Add(float64(len(spans) - sampledOut))
			r.spans.WithLabelValues(protocol, "sampled_out").Add(float64(sampledOut))
			r.spans.WithLabelValues(protocol, "rejected").Add(float64(rejected))
		}
	}
	result := "ok"
	switch {
	case errors.Is(err, ErrUnavailable):
		result = "unavailable"
		r.log.Warn("otlp export refused: queue unavailable", slog.String("protocol", protocol), slog.Any("err", err))
	case errors.Is(err, ErrTooLarge):
		result = "too_large"
	case errors.As(err, new(*LimitedError)):
		result = "limited"
	case err != nil:
		result = "invalid"
	case rejected > 0:
		result = "partial"
	}
	r.reqs.WithLabelValues(protocol, result).Inc()
	return rejected, err
}

// publishSpans samples spans and publishes those kept; it returns how
// many sampling left out. body, when given, is spans' message as it came
// (contentType): published as is when sampling kept every span. Otherwise
// the kept spans go as Zipkin proto3 lists no larger than the collectors
// take (MaxBytes): OTLP's resource attributes become every span's tags, so
// a request under the limit can translate to more bytes. Should a later
// part fail, the client retries the whole request and the store keeps
// each span once.
func (r *Receiver) publishSpans(ctx context.Context, spans []zipkin.Span, body []byte, contentType string) (int, error) {
	n := len(spans)
	spans = zipkin.Sample(spans, r.cfg.SampleRate)
	if len(spans) == 0 { // an empty list, or every trace sampled out: nothing to store
		return n, nil
	}
	if len(spans) == n && body != nil {
		return 0, r.publish(ctx, body, contentType)
	}
	return n - len(spans), r.publishProto(ctx, spans)
}

func (r *Receiver) publishProto(ctx context.Context, spans []zipkin.Span) error {
	if len(spans) == 0 {
		return nil
	}
	out, err := zipkin.EncodeProto(spans)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if len(out) > r.cfg.MaxBytes && len(spans) > 1 {
		half := len(spans) / 2
		if err := r.publishProto(ctx, spans[:half]); err != nil {
			return err
		}
		return r.publishProto(ctx, spans[half:])
	}
	return r.publish(ctx, out, "application/x-protobuf")
}

// publish waits at most ConfirmTimeout for the broker's confirm; any
// failure is ErrUnavailable.
func (r *Receiver) publish(ctx context.Context, body []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConfirmTimeout)
	defer cancel()
	if err := r.pub.Publish(ctx, body, contentType); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// hold reserves n bytes of the in-flight budget (a body's declared or
// largest size) and returns their release, or ErrBusy when they do not
// fit now.
func (r *Receiver) hold(n int64) (func(), error) {
	n = min(max(n, 1), int64(r.cfg.MaxBytes))
	if !r.inflight.TryAcquire(n) {
		return nil, ErrBusy
	}
	return func() { r.inflight.Release(n) }, nil
}
