package broker

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/openzipkin/zipkin-go/model"
)

// SelfService is the service name of zipq's own spans (self-tracing).
const SelfService = "zipq"

// selfBacklog bounds the spans a SelfReporter holds while RabbitMQ is
// away; more are dropped, never queued without limit.
const selfBacklog = 10000

// SelfReporter is a zipkin-go reporter for zipq's own spans: it publishes
// them to the span queue like any client, every interval, through the
// Publisher. It exists instead of zipkin-go's AMQP reporter, which cannot
// target another queue name and never stops its error goroutine.
type SelfReporter struct {
	pub      *Publisher
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending []model.SpanModel
	dropped int
}

// NewSelfReporter returns a reporter flushing every interval once Run runs.
func NewSelfReporter(pub *Publisher, interval time.Duration, log *slog.Logger) *SelfReporter {
	return &SelfReporter{pub: pub, interval: interval, log: log}
}

// Send implements reporter.Reporter; it never blocks.
func (r *SelfReporter) Send(s model.SpanModel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) >= selfBacklog {
		r.dropped++
		return
	}
	r.pending = append(r.pending, s)
}

// Close implements reporter.Reporter; Run's last flush does the work.
func (r *SelfReporter) Close() error { return nil }

// Run flushes every interval until ctx ends, then once more.
func (r *SelfReporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r.flush(final)
			return nil
		case <-t.C:
			r.flush(ctx)
		}
	}
}

func (r *SelfReporter) flush(ctx context.Context) {
	r.mu.Lock()
	spans, dropped := r.pending, r.dropped
	r.pending, r.dropped = nil, 0
	r.mu.Unlock()
	if dropped > 0 {
		r.log.Warn("self-tracing spans dropped: backlog full", slog.Int("dropped", dropped))
	}
	if len(spans) == 0 {
		return
	}
	body, err := json.Marshal(spans)
	if err == nil {
		err = r.pub.Publish(ctx, body, "application/json")
	}
	if err != nil {
		r.log.Warn("self-tracing spans lost", slog.Int("spans", len(spans)), slog.Any("err", err))
	}
}
