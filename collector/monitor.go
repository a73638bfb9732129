package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Monitor reports the pipeline: the span queue's depth and consumers, the
// parking queue, ingest and store rates and how long the backlog will take
// to drain. It samples every interval in Run; rates come from the span
// queue's depth and, when this process runs a collector, from its own
// counters read through the Prometheus gatherer they are registered on.
type Monitor struct {
	cfg    Config
	pub    *Publisher
	gather prometheus.Gatherer
	every  time.Duration

	mu      sync.Mutex
	samples []sample // oldest first, at most monitorWindow
}

type sample struct {
	at               time.Time
	depth            int
	received, stored float64
	counters         bool
}

const monitorWindow = 6

// ParkedMessage describes one parked message without its body.
type ParkedMessage struct {
	Reason   string `json:"reason"`
	Error    string `json:"error,omitempty"`
	ParkedAt string `json:"parkedAt,omitempty"`
	Bytes    int    `json:"bytes"`
	Replays  int32  `json:"replays,omitempty"`
}

// Snapshot is what GET /api/zipq/pipeline returns.
type Snapshot struct {
	Queue             string          `json:"queue"`
	QueueType         string          `json:"queueType,omitempty"` // quorum, classic or stream; empty when unknown
	Warning           string          `json:"warning,omitempty"`   // e.g. a classic span queue
	Messages          int             `json:"messages"`
	Consumers         int             `json:"consumers"`
	ParkedQueue       string          `json:"parkedQueue"`
	Parked            int             `json:"parked"`
	ParkedSample      []ParkedMessage `json:"parkedSample,omitempty"`
	ReceivedPerSecond *float64        `json:"receivedPerSecond"` // spans/s decoded here; null without a local collector
	StoredPerSecond   *float64        `json:"storedPerSecond"`   // spans/s committed here; null without a local collector
	DrainPerSecond    *float64        `json:"drainPerSecond"`    // messages/s the queue shrinks by (negative: grows)
	DrainSeconds      *float64        `json:"drainSeconds"`      // queue depth / drain rate; null when not draining
}

// NewMonitor reads RabbitMQ through pub's connection; gather may be nil.
func NewMonitor(cfg Config, pub *Publisher, gather prometheus.Gatherer, every time.Duration) *Monitor {
	return &Monitor{cfg: cfg.WithDefaults(), pub: pub, gather: gather, every: every}
}

// Run samples until ctx ends; a failed sample is skipped (RabbitMQ down).
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		if s, err := m.sample(); err == nil {
			m.mu.Lock()
			m.samples = append(m.samples, s)
			if len(m.samples) > monitorWindow {
				m.samples = m.samples[1:]
			}
			m.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Monitor) sample() (sample, error) {
	q, err := m.pub.Inspect(m.cfg.Queue)
	if err != nil {
		return sample{}, err
	}
	s := sample{at: time.Now(), depth: q.Messages}
	if m.gather != nil {
		s.received, s.stored, s.counters = counterSum(m.gather, "zipq_collector_spans_received_total"),
			counterSum(m.gather, "zipq_collector_spans_stored_total"), true
	}
	return s, nil
}

func counterSum(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Snapshot reports the pipeline now; with peek it also lists up to
// peekLimit parked messages (taken and returned unacknowledged, so they
// stay parked in their order).
func (m *Monitor) Snapshot(ctx context.Context, peek bool) (Snapshot, error) {
	s := Snapshot{Queue: m.cfg.Queue, ParkedQueue: m.cfg.ParkedQueue}
	q, err := m.pub.Inspect(m.cfg.Queue)
	if err != nil {
		return s, err
	}
	s.Messages, s.Consumers = q.Messages, q.Consumers
	if typ, err := m.pub.QueueType(); err == nil {
		s.QueueType = typ
		if typ == "classic" {
			s.Warning = ClassicQueueWarning(m.cfg.Queue)
		}
	}
	if pq, err := m.pub.Inspect(m.cfg.ParkedQueue); err == nil {
		s.Parked = pq.Messages
	}
	if peek && s.Parked > 0 {
		if s.ParkedSample, err = m.pub.peek(ctx, m.cfg.ParkedQueue, peekLimit); err != nil {
			return s, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.samples); n >= 2 {
		first, last := m.samples[0], m.samples[n-1]
		secs := last.at.Sub(first.at).Seconds()
		rate := func(v float64) *float64 { r := v / secs; return &r }
		s.DrainPerSecond = rate(float64(first.depth - last.depth))
		if last.counters {
			s.ReceivedPerSecond, s.StoredPerSecond = rate(last.received-first.received), rate(last.stored-first.stored)
		}
		if *s.DrainPerSecond > 0 && s.Messages > 0 {
			eta := float64(s.Messages) / *s.DrainPerSecond
			s.DrainSeconds = &eta
		}
	}
	return s, nil
}

const peekLimit = 50

// QueueType reports the span queue's type over the publisher's connection.
func (p *Publisher) QueueType() (string, error) {
	conn, err := p.connection()
	if err != nil {
		return "", err
	}
	return QueueType(conn, p.cfg.Queue)
}

// Inspect reports a queue's depth and consumers over the publisher's
// connection.
func (p *Publisher) Inspect(queue string) (amqp.Queue, error) {
	conn, err := p.connection()
	if err != nil {
		return amqp.Queue{}, err
	}
	return Inspect(conn, queue)
}

// connection is the publisher's connection, dialled if needed.
func (p *Publisher) connection() (*amqp.Connection, error) {
	if _, err := p.channel(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conn, nil
}

// peek gets up to limit messages without acknowledging them, then closes
// the channel, which returns them all to the queue.
func (p *Publisher) peek(ctx context.Context, queue string, limit int) ([]ParkedMessage, error) {
	conn, err := p.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("peek %s: %w", queue, err)
	}
	defer ch.Close()
	var out []ParkedMessage
	for len(out) < limit && ctx.Err() == nil {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return out, fmt.Errorf("peek %s: %w", queue, err)
		}
		if !ok {
			break
		}
		pm := ParkedMessage{Reason: string(ParkedReason(d.Headers)), Bytes: len(d.Body)}
		pm.Error, _ = d.Headers[HeaderError].(string)
		pm.ParkedAt, _ = d.Headers[HeaderParkedAt].(string)
		pm.Replays, _ = d.Headers[HeaderReplays].(int32)
		out = append(out, pm)
	}
	return out, nil
}
