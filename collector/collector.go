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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Collector drains the span queue into a SpanWriter. Run it with Run; Stop
// drains it.
type Collector struct {
	cfg Config
	w   SpanWriter
	log *slog.Logger
	m   *metrics

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop: cancel consumers, commit, ack
	done     chan struct{} // closed when Run returns
	ready    chan struct{} // closed once the first consumers are running
	readyMu  sync.Once

	mu        sync.Mutex
	connected bool
}

// New builds a collector. reg may be nil (no metrics); logger may be nil.
func New(cfg Config, w SpanWriter, logger *slog.Logger, reg prometheus.Registerer) (*Collector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		cfg: cfg, w: w, log: logger, m: newMetrics(reg),
		stopping: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{}),
	}, nil
}

// Ready is closed once consumers first run: tests and /health use it.
func (c *Collector) Ready() <-chan struct{} { return c.ready }

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
	conn, err := Dial(c.cfg, "zipq collector")
	if err != nil {
		return fmt.Errorf("dial rabbitmq: %w", err)
	}
	defer conn.Close()
	if err := Declare(conn, c.cfg); err != nil {
		return err
	}
	if err := DeclareParking(conn, c.cfg); err != nil {
		return err
	}
	c.log.Info("connected to rabbitmq", slog.String("addr", conn.RemoteAddr().String()), slog.String("queue", c.cfg.Queue))
	if typ, err := QueueType(conn, c.cfg.Queue); err == nil && typ == "classic" {
		c.log.Warn(ClassicQueueWarning(c.cfg.Queue), slog.String("queue", c.cfg.Queue), slog.String("queue_type", typ))
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
	c.readyMu.Do(func() { close(c.ready) })
	monitorDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.monitor(conn, monitorDone)
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
	return first
}

// Declare creates exactly what zipkin-go's reporter declares — a durable
// direct exchange "zipkin" and a durable queue with no arguments bound to it
// with its own name — so every client's declare stays equivalent and the
// broker's default queue type decides the queue's type. The parking queue
// is zipq's own: DeclareParking.
func Declare(conn *amqp.Connection, cfg Config) error {
	cfg = cfg.WithDefaults()
	return onChannel(conn, "declare", func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(Exchange, "direct", true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", Exchange, err)
		}
		if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %s: %w", cfg.Queue, err)
		}
		if err := ch.QueueBind(cfg.Queue, cfg.Queue, Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", cfg.Queue, err)
		}
		return nil
	})
}

// DeclareParking declares zipq's parking queue, with an explicit type. Only
// consumers need it: HTTP ingest publishes to the span queue and keeps
// working when the parking queue cannot be declared.
func DeclareParking(conn *amqp.Connection, cfg Config) error {
	cfg = cfg.WithDefaults()
	return onChannel(conn, "declare", func(ch *amqp.Channel) error {
		args := amqp.Table{"x-queue-type": cfg.ParkedQueueType}
		_, err := ch.QueueDeclare(cfg.ParkedQueue, true, false, false, false, args)
		switch {
		case err == nil:
			return nil
		case preconditionFailed(err) != nil:
			return fmt.Errorf("parking queue %s exists with another type than %q: set RABBIT_PARKED_QUEUE_TYPE to its type, or delete the queue: %w",
				cfg.ParkedQueue, cfg.ParkedQueueType, err)
		default:
			return fmt.Errorf("declare parking queue %s: %w", cfg.ParkedQueue, err)
		}
	})
}

// onChannel runs fn on a channel of its own: a refused declare closes the
// channel it ran on, so a declare or a probe must not share one.
func onChannel(conn *amqp.Connection, what string, fn func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("%s: open channel: %w", what, err)
	}
	defer ch.Close()
	return fn(ch)
}

// preconditionFailed is err's PRECONDITION_FAILED (406) from the broker, or
// nil: a declare that is not equivalent to the existing queue.
func preconditionFailed(err error) *amqp.Error {
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
		return ae
	}
	return nil
}

// monitor publishes the queue's depth and consumer count as gauges.
func (c *Collector) monitor(conn *amqp.Connection, done <-chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if q, err := Inspect(conn, c.cfg.Queue); err == nil {
			c.m.queueDepth.Set(float64(q.Messages))
			c.m.queueConsumer.Set(float64(q.Consumers))
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// Inspect reports a queue's ready messages and consumers without changing
// it (a passive declare on a throwaway channel, since a missing queue
// closes the channel).
func Inspect(conn *amqp.Connection, queue string) (amqp.Queue, error) {
	var q amqp.Queue
	err := onChannel(conn, "inspect "+queue, func(ch *amqp.Channel) error {
		var err error
		if q, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("inspect %s: %w", queue, err)
		}
		return nil
	})
	return q, err
}

// QueueType reports the type of an existing queue — "quorum", "classic" or
// "stream" — which AMQP 0-9-1 has no read for. It redeclares the queue with
// x-queue-type=quorum on a throwaway channel: RabbitMQ accepts that only for
// a quorum queue and otherwise refuses with PRECONDITION_FAILED naming what
// the queue is. The passive declare first makes sure the probe can never
// create the queue with an argument that unchanged clients would then
// trip over (a queue deleted between the two calls is the only window).
func QueueType(conn *amqp.Connection, queue string) (string, error) {
	if _, err := Inspect(conn, queue); err != nil {
		return "", err
	}
	typ := "quorum"
	err := onChannel(conn, "queue type of "+queue, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		switch ae := preconditionFailed(err); {
		case err == nil:
		case ae != nil && strings.Contains(ae.Reason, "'stream'"):
			typ = "stream"
		case ae != nil:
			typ = "classic"
		default:
			return fmt.Errorf("queue type of %s: %w", queue, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return typ, nil
}

// ClassicQueueWarning is what zipq says about a classic span queue, in the
// log at start, in /health and on the UI's pipeline page.
func ClassicQueueWarning(queue string) string {
	return "span queue " + queue + " is a classic queue: messages published without delivery mode 2 " +
		"(zipkin-go's AMQP reporter, Brave's RabbitMQSender) live only in the broker's memory and are lost " +
		"when RabbitMQ restarts. Recreate it as a quorum queue through the vhost's default queue type " +
		"(README, \"Durability\")"
}
