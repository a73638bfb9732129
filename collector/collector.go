package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// Collector drains the span queue into a SpanWriter. Run it with Run; Stop
// drains it.
type Collector struct {
	cfg      Config
	dec      MessageDecoder
	w        SpanWriter
	log      *slog.Logger
	m        *metrics
	throttle Throttle // nil: as fast as the store takes it

	// cautiousUntil (unix nanoseconds) is set when a session ended on a
	// message the client library could not decode: consumers started
	// before it take one message at a time (prefetch 1, committed before
	// the next), so the messages around the bad one are stored while it
	// alone is redelivered until the queue's delivery limit sets it aside.
	cautiousUntil atomic.Int64

	// mgmt is RabbitMQ's management API (nil: off): the span queue's
	// delivery-limit policy, set once per process, and the poison queue,
	// moved to the parking queue as messages arrive there.
	mgmt      *broker.Management
	policySet bool // only a session's monitor goroutine touches it, one session at a time

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: cancel consumers, commit, ack
	done     chan struct{} // closed when Run returns

	mu        sync.Mutex
	connected bool
	// The writer's progress, for Stalled: when a batch last committed (or
	// a message was otherwise settled), the write errors since, and the
	// latest one.
	lastProgress time.Time
	failures     int
	lastErr      error
}

// New builds a collector that decodes messages with dec and stores their
// spans with w. reg may be nil (no metrics); logger may be nil.
func New(cfg Config, dec MessageDecoder, w SpanWriter, logger *slog.Logger, reg prometheus.Registerer) (*Collector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	if dec == nil || w == nil {
		return nil, errors.New("collector: a message decoder and a span writer are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mgmt, err := broker.NewManagement(cfg.Broker)
	if err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	return &Collector{
		cfg: cfg, dec: dec, w: w, log: logger, m: newMetrics(reg), mgmt: mgmt,
		stopping: make(chan struct{}), done: make(chan struct{}),
		lastProgress: time.Now(),
	}, nil
}

// Throttle slows the collector's tenant's consumers to its ingest limit
// (tenant.Meters): Wait returns once spans and bytes may be taken, or
// with ctx's error. Messages wait in the queue meanwhile; none is dropped.
type Throttle interface {
	Wait(ctx context.Context, spans, bytes int) error
}

// SetThrottle slows consumption to t (before Run).
func (c *Collector) SetThrottle(t Throttle) { c.throttle = t }

// SpansReceived is how many spans this collector decoded so far.
func (c *Collector) SpansReceived() uint64 { return c.m.received.Load() }

// SpansStored is how many spans this collector committed so far.
func (c *Collector) SpansStored() uint64 { return c.m.stored.Load() }

// progress records a settled message: the writer is not stalled.
func (c *Collector) progress() {
	c.mu.Lock()
	c.lastProgress, c.failures, c.lastErr = time.Now(), 0, nil
	c.mu.Unlock()
}

// writeFailed records a batch write that will be retried.
func (c *Collector) writeFailed(err error) {
	c.mu.Lock()
	c.failures++
	c.lastErr = err
	c.mu.Unlock()
}

// stallRetries is how many consecutive failed writes make a stall without
// waiting for StallAfter.
const stallRetries = 5

// Stalled says why the writer is stuck, or nil: messages are waiting
// unacknowledged and nothing was committed for StallAfter, or the last
// stallRetries writes all failed. PostgreSQL can answer pings and still
// refuse every write (privileges revoked, read-only, disk full): /health
// reports this as degraded with the cause.
func (c *Collector) Stalled() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	waiting := c.m.held.Load()
	idle := time.Since(c.lastProgress)
	switch {
	case c.failures >= stallRetries:
		return fmt.Errorf("the last %d batch writes failed (%d messages waiting): %w", c.failures, waiting, c.lastErr)
	case waiting > 0 && idle > c.cfg.StallAfter:
		err := fmt.Errorf("no batch committed for %s while %d messages wait", idle.Round(time.Second), waiting)
		if c.lastErr != nil {
			err = fmt.Errorf("%w; last write error: %w", err, c.lastErr)
		}
		return err
	}
	return nil
}

// Connected reports whether the collector holds a live RabbitMQ connection.
func (c *Collector) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Run consumes until Stop is called or ctx ends, reconnecting with backoff
// whenever the RabbitMQ connection is lost. After Stop it returns nil once
// the last batch committed and was acked (or the stop deadline passed, in
// which case unacked messages simply return to the queue). Cancelling ctx
// abandons in-flight batches the same way.
func (c *Collector) Run(ctx context.Context) error {
	defer close(c.done)
	if c.cfg.Tenant != "" {
		ctx = tenant.With(ctx, c.cfg.Tenant)
	}
	// Work outlives ctx cancellation only through Stop's drain deadline.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		select {
		case <-ctx.Done():
			cancelWork()
		case <-c.done:
		}
	}()
	go func() {
		select {
		case <-c.stopping:
			t := time.NewTimer(c.cfg.StopTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				c.log.Warn("stop deadline passed; abandoning uncommitted batches, they stay in the queue")
				cancelWork()
			case <-c.done:
			}
		case <-c.done:
		}
	}()

	delay := c.cfg.RetryMin
	for {
		started := time.Now()
		err := c.session(work)
		if c.isStopping() || work.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			delay = c.cfg.RetryMin // a long healthy session resets the backoff
		}
		c.log.Warn("rabbitmq session ended; reconnecting", slog.Any("err", err), slog.Duration("backoff", delay))
		if !c.sleep(work, delay) {
			return nil
		}
		delay = min(2*delay, c.cfg.RetryMax)
	}
}

// Stop stops consuming, commits and acks what was received, and returns
// once Run has returned. It is safe to call more than once, and before Run
// (Run then returns at once).
func (c *Collector) Stop() {
	c.stopOnce.Do(func() { close(c.stopping) })
	<-c.done
}

func (c *Collector) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// sleep waits d (with jitter) unless stopping; it reports whether to go on.
func (c *Collector) sleep(ctx context.Context, d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stopping:
		return false
	case <-ctx.Done():
		return false
	}
}

func (c *Collector) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

// session runs one connection: declare, start the consumers, watch the
// queue, and end when the connection dies or every consumer has drained.
func (c *Collector) session(ctx context.Context) error {
	conn, err := broker.Dial(c.cfg.Broker, "zipq collector")
	if err != nil {
		return fmt.Errorf("dial rabbitmq: %w", err)
	}
	defer conn.Close()
	// Why the connection ended: the consumers only see their deliveries
	// stop, and a session that ends with no error says nothing in the log
	// (a message the client library cannot decode drops the connection).
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := broker.Declare(conn, c.cfg.Broker); err != nil {
		return err
	}
	if err := broker.DeclareParking(conn, c.cfg.Broker); err != nil {
		return err
	}
	c.log.Info("connected to rabbitmq", slog.String("addr", conn.RemoteAddr().String()), slog.String("queue", c.cfg.Broker.Queue))
	if typ, err := broker.QueueType(conn, c.cfg.Broker.Queue); err == nil && typ == "classic" {
		c.log.Warn(broker.ClassicQueueWarning(c.cfg.Broker.Queue), slog.String("queue", c.cfg.Broker.Queue), slog.String("queue_type", typ))
	}
	c.setConnected(true)
	defer c.setConnected(false)

	var wg sync.WaitGroup
	errs := make(chan error, c.cfg.Concurrency)
	for i := range c.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.consume(ctx, conn, "zipq-"+strconv.Itoa(i))
		}()
	}
	monitorDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.monitor(ctx, conn, monitorDone)
	}()
	// The first consumer to end decides: a stop drains the others too; a
	// broken connection or channel ends the session for a clean restart.
	first := <-errs
	if !c.isStopping() {
		_ = conn.Close()
	}
	close(monitorDone)
	wg.Wait()
	close(errs)
	for err := range errs {
		first = errors.Join(first, err)
	}
	if first == nil && !c.isStopping() {
		first = closeReason(closed)
	}
	if undecodable(first) {
		c.cautiousUntil.Store(time.Now().Add(cautiousFor).UnixNano())
		c.log.Warn("rabbitmq delivered a message this client cannot decode; consuming one message at a time for a while, "+
			"so that the queue's delivery limit sets it aside (README, \"A message the client cannot read\")", slog.Any("err", first))
	}
	return first
}

// ensurePolicy gives the span queue its delivery-limit policy through the
// management API, once per process (README, "A message the client cannot
// read"); an unreachable API or missing rights are logged, and tried again
// next session.
func (c *Collector) ensurePolicy(ctx context.Context) {
	if c.mgmt == nil || c.policySet {
		return
	}
	did, err := c.mgmt.EnsureSpanQueuePolicy(ctx)
	if err != nil {
		c.log.Warn("could not check the span queue's delivery-limit policy; set it by hand (README, \"A message the client cannot read\") or RABBIT_MANAGEMENT_URL=off",
			slog.Any("err", err))
		return
	}
	c.policySet = true
	c.log.Info(did, slog.String("queue", c.cfg.Broker.Queue))
}

// movePoison moves what the delivery-limit policy dead-lettered to the
// parking queue, where the pipeline page, replay and discard can read it:
// zipq's AMQP client cannot, it is there for headers the client refuses.
func (c *Collector) movePoison(ctx context.Context, conn *amqp.Connection) {
	if c.mgmt == nil {
		return
	}
	q, err := broker.Inspect(conn, c.cfg.Broker.PoisonQueue())
	if err != nil || q.Messages == 0 {
		return
	}
	parker, err := broker.NewParker(conn, c.cfg.Broker)
	if err != nil {
		return
	}
	defer parker.Close()
	n, err := c.mgmt.MovePoison(ctx, parker, q.Messages)
	if n > 0 {
		c.m.parked.WithLabelValues(string(zipkin.ReasonDeliveryLimit)).Add(float64(n))
		c.log.Warn("messages dead-lettered by the span queue's delivery limit moved to the parking queue, without their AMQP headers",
			slog.Int("messages", n), slog.String("from", c.cfg.Broker.PoisonQueue()), slog.String("to", c.cfg.Broker.WithDefaults().ParkedQueue))
	}
	if err != nil {
		c.log.Warn("could not move the poison queue's messages to the parking queue", slog.Any("err", err))
	}
}

// cautiousFor is how long consumers take one message at a time after a
// message the client could not decode.
const cautiousFor = time.Minute

// undecodable reports whether err is the client library failing to read a
// frame (AMQP 501 frame error, 502 syntax error): a message it cannot
// decode, which drops the connection every time it is delivered.
func undecodable(err error) bool {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Code == amqp.FrameError || ae.Code == amqp.SyntaxError || strings.Contains(ae.Reason, "inside of a frame")
}

// closeReason is why a connection or channel closed, once it has: the
// server's or the client library's error, or a plain note when it closed
// cleanly.
func closeReason(closed <-chan *amqp.Error) error {
	select {
	case e, ok := <-closed:
		if ok && e != nil {
			return fmt.Errorf("closed: %w", e)
		}
		return errors.New("closed without an error")
	case <-time.After(time.Second):
		return errors.New("consumers ended with the connection still open")
	}
}

// monitor publishes the queue's depth and consumer count as gauges, sets the
// span queue's policy, and moves what it dead-letters to the parking queue.
func (c *Collector) monitor(ctx context.Context, conn *amqp.Connection, done <-chan struct{}) {
	// Here, not before the consumers start: a management API that does
	// not answer must not delay consuming.
	c.ensurePolicy(ctx)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if q, err := broker.Inspect(conn, c.cfg.Broker.Queue); err == nil {
			c.m.queueDepth.Set(float64(q.Messages))
			c.m.queueConsumer.Set(float64(q.Consumers))
		}
		c.movePoison(ctx, conn)
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
