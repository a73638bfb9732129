package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Throughput is a collector's running totals, read by the Monitor for its
// rates; a typed source, so renaming a metric cannot silently zero them.
type Throughput interface {
	SpansReceived() uint64
	SpansStored() uint64
}

// Monitor reports the pipeline: the span queue's depth and consumers, the
// parking queue, ingest and store rates and how long the backlog will take
// to drain. It samples every interval in Run; rates come from the span
// queue's depth and, when this process runs a collector, from its
// Throughput. It reads RabbitMQ over a connection of its own, so a
// look at large parked messages never delays HTTP ingest's publishes.
type Monitor struct {
	cfg   Config
	conn  *lazyConn
	local Throughput // nil: no collector in this process
	every time.Duration

	mu      sync.Mutex
	samples []sample // oldest first, at most monitorWindow

	peekMu      sync.Mutex // one peek at a time; callers meanwhile wait and share it
	peeked      []ParkedMessage
	peekedAt    time.Time
	peekedCount int // the parking queue's length when peeked
	peekBytes   prometheus.Counter
}

type sample struct {
	at               time.Time
	depth            int
	received, stored uint64
	counters         bool
}

const monitorWindow = 6

// ParkedMessage describes one parked message: its parking headers and the
// first bytes of its body.
type ParkedMessage struct {
	ID       string `json:"id"`   // ParkedID of the body: what Discard takes
	Head     string `json:"head"` // the first parkedHeadBytes of the body, as text
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
	Messages          int             `json:"messages"`            // ready in the span queue
	Consumers         int             `json:"consumers"`
	ParkedQueue       string          `json:"parkedQueue"`
	Parked            int             `json:"parked"`
	ParkedSample      []ParkedMessage `json:"parkedSample,omitempty"`
	ParkedSampleAt    string          `json:"parkedSampleAt,omitempty"` // when the sample was read (it is cached)
	ReceivedPerSecond *float64        `json:"receivedPerSecond"`        // spans/s decoded here; null without a local collector
	StoredPerSecond   *float64        `json:"storedPerSecond"`          // spans/s committed here; null without a local collector
	DrainPerSecond    *float64        `json:"drainPerSecond"`           // messages/s the queue shrinks by (negative: grows)
	DrainSeconds      *float64        `json:"drainSeconds"`             // queue depth / drain rate; null when not draining
	// The tenant whose queue this is, and its limits (ZIPQ_TENANTS_FILE;
	// zero: none), filled in by whoever knows the tenants.
	Tenant              string  `json:"tenant,omitempty"`
	LimitSpansPerSecond float64 `json:"limitSpansPerSecond,omitempty"`
	LimitBytesPerSecond float64 `json:"limitBytesPerSecond,omitempty"`
	RetentionHours      float64 `json:"retentionHours,omitempty"`
	MaxTraceSpans       int     `json:"maxTraceSpans,omitempty"`
	// What the store takes on disk against ZIPQ_RETENTION_BYTES, filled
	// in by whoever has the store.
	StorageBytes       int64  `json:"storageBytes,omitempty"`
	StorageBudgetBytes int64  `json:"storageBudgetBytes,omitempty"`
	OldestDay          string `json:"oldestDay,omitempty"` // YYYY-MM-DD: the oldest day of spans kept
	OverBudget         bool   `json:"overBudget,omitempty"`
	// The tenant's share of it against its own budget (retention_bytes),
	// when there are several tenants.
	TenantBytes       int64  `json:"tenantBytes,omitempty"`
	TenantBudgetBytes int64  `json:"tenantBudgetBytes,omitempty"`
	TenantOldestDay   string `json:"tenantOldestDay,omitempty"`
	TenantOverBudget  bool   `json:"tenantOverBudget,omitempty"`
	// The newest learned compression dictionary and what it saved on
	// held-out segments (0.33: a third smaller); none: the shipped one.
	Dictionary     int     `json:"dictionary,omitempty"`
	DictionaryGain float64 `json:"dictionaryGain,omitempty"`
}

// The parked sample is bounded and cached: RabbitMQ hands out whole
// messages (AMQP has no header-only read), so each look costs the bodies
// it reads. At most peekLimit messages, and no more once peekBudget bytes
// were read (the message that crosses it is the one overshoot), at most
// once per peekTTL whoever asks.
const (
	peekLimit  = 20
	peekBudget = 1 << 20
	peekTTL    = 10 * time.Second
)

// NewMonitor returns a monitor of cfg's queues; local may be nil. reg (may
// be nil) receives the bytes its parked-message peeks read.
func NewMonitor(cfg Config, local Throughput, every time.Duration, reg prometheus.Registerer) *Monitor {
	m := &Monitor{cfg: cfg.WithDefaults(), conn: newLazyConn(cfg, "zipq pipeline monitor"), local: local, every: every,
		peekBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "zipq_pipeline_peek_bytes_total",
			Help: "Bytes of parked messages read to describe them on the pipeline page."})}
	if reg != nil {
		reg.MustRegister(m.peekBytes)
	}
	return m
}

// Run samples until ctx ends, then closes the monitor's connection; a
// failed sample is skipped (RabbitMQ down).
func (m *Monitor) Run(ctx context.Context) error {
	defer m.conn.close()
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
	q, err := m.inspect(m.cfg.Queue)
	if err != nil {
		return sample{}, err
	}
	s := sample{at: time.Now(), depth: q.Messages}
	if m.local != nil {
		s.received, s.stored, s.counters = m.local.SpansReceived(), m.local.SpansStored(), true
	}
	return s, nil
}

func (m *Monitor) inspect(queue string) (amqp.Queue, error) {
	conn, err := m.conn.get()
	if err != nil {
		return amqp.Queue{}, err
	}
	return Inspect(conn, queue)
}

// Snapshot reports the pipeline now; with peek it also describes the first
// parked messages (see peekLimit).
func (m *Monitor) Snapshot(ctx context.Context, peek bool) (Snapshot, error) {
	s := Snapshot{Queue: m.cfg.Queue, ParkedQueue: m.cfg.ParkedQueue}
	q, err := m.inspect(m.cfg.Queue)
	if err != nil {
		return s, err
	}
	s.Messages, s.Consumers = q.Messages, q.Consumers
	if conn, err := m.conn.get(); err == nil {
		if typ, err := QueueType(conn, m.cfg.Queue); err == nil {
			s.QueueType = typ
			if typ == "classic" {
				s.Warning = ClassicQueueWarning(m.cfg.Queue)
			}
		}
	}
	if pq, err := m.inspect(m.cfg.ParkedQueue); err == nil {
		s.Parked = pq.Messages
	}
	if peek && s.Parked > 0 {
		var at time.Time
		if s.ParkedSample, at, err = m.parkedSample(ctx, s.Parked); err != nil {
			return s, err
		}
		s.ParkedSampleAt = at.UTC().Format(time.RFC3339)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.samples); n >= 2 {
		first, last := m.samples[0], m.samples[n-1]
		secs := last.at.Sub(first.at).Seconds()
		rate := func(v float64) *float64 { r := v / secs; return &r }
		s.DrainPerSecond = rate(float64(first.depth - last.depth))
		if last.counters {
			s.ReceivedPerSecond = rate(float64(last.received - first.received))
			s.StoredPerSecond = rate(float64(last.stored - first.stored))
		}
		if *s.DrainPerSecond > 0 && s.Messages > 0 {
			eta := float64(s.Messages) / *s.DrainPerSecond
			s.DrainSeconds = &eta
		}
	}
	return s, nil
}

// parkedSample is the cached peek, read again once older than peekTTL or
// when the parking queue's length changed since (a replay, a discard or a
// new parked message make the cached list wrong).
func (m *Monitor) parkedSample(ctx context.Context, parked int) ([]ParkedMessage, time.Time, error) {
	m.peekMu.Lock()
	defer m.peekMu.Unlock()
	if !m.peekedAt.IsZero() && time.Since(m.peekedAt) < peekTTL && parked == m.peekedCount {
		return m.peeked, m.peekedAt, nil
	}
	out, err := m.peek(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	m.peeked, m.peekedAt, m.peekedCount = out, time.Now(), parked
	return out, m.peekedAt, nil
}

// peek gets parked messages without acknowledging them, then closes the
// channel, which returns them all to the queue in their order.
func (m *Monitor) peek(ctx context.Context) ([]ParkedMessage, error) {
	conn, err := m.conn.get()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("peek %s: %w", m.cfg.ParkedQueue, err)
	}
	defer ch.Close()
	var out []ParkedMessage
	read := 0
	for len(out) < peekLimit && read < peekBudget && ctx.Err() == nil {
		d, ok, err := ch.Get(m.cfg.ParkedQueue, false)
		if err != nil {
			return out, fmt.Errorf("peek %s: %w", m.cfg.ParkedQueue, err)
		}
		if !ok {
			break
		}
		read += len(d.Body)
		m.peekBytes.Add(float64(len(d.Body)))
		pm := ParkedMessage{ID: ParkedID(d.Body), Head: parkedHead(d.Body), Reason: string(ParkedReason(d.Headers)), Bytes: len(d.Body)}
		pm.Error, _ = d.Headers[HeaderError].(string)
		pm.ParkedAt, _ = d.Headers[HeaderParkedAt].(string)
		pm.Replays, _ = d.Headers[HeaderReplays].(int32)
		out = append(out, pm)
	}
	return out, nil
}

// parkedHeadBytes of a parked body are shown: enough to recognise a
// message (a truncated JSON list, an HTML page, protobuf) without
// sending megabytes to a browser.
const parkedHeadBytes = 256

// parkedHead is the start of body as valid UTF-8 (invalid bytes, and a
// rune cut at the end, become U+FFFD).
func parkedHead(body []byte) string {
	return strings.ToValidUTF8(string(body[:min(len(body), parkedHeadBytes)]), "\uFFFD")
}

// ParkedID names a parked message by its content: AMQP cannot address one
// message in a queue, so Discard finds it by its body. Identical bodies
// share an ID, and discarding either is the same.
func ParkedID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}

// Discard removes the first parked message whose ParkedID is id, among
// those parked when it starts, for an operator dropping one that can
// never be stored. The messages read before it are returned to the queue
// when the channel closes (they were never acked). It reports how many it
// removed: 0 or 1.
func (m *Monitor) Discard(ctx context.Context, id string) (int, error) {
	q, err := m.inspect(m.cfg.ParkedQueue)
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	conn, err := m.conn.get()
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("discard: %w", err)
	}
	defer ch.Close()
	for seen := 0; seen < q.Messages; seen++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		d, ok, err := ch.Get(m.cfg.ParkedQueue, false)
		if err != nil {
			return 0, fmt.Errorf("discard: get from %s: %w", m.cfg.ParkedQueue, err)
		}
		if !ok {
			break
		}
		m.peekBytes.Add(float64(len(d.Body)))
		if ParkedID(d.Body) != id {
			continue
		}
		if err := d.Ack(false); err != nil {
			return 0, fmt.Errorf("discard: ack: %w", err)
		}
		return 1, nil // the cached sample lists it, but the queue is shorter now
	}
	return 0, nil
}
