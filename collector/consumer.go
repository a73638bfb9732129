package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/zipq/zipq/broker"
	"github.com/zipq/zipq/zipkin"
)

// batch is the spans of consecutive deliveries on one channel. Its
// deliveries are acked together, after its spans committed.
type batch struct {
	spans      []zipkin.Span
	commit     func(context.Context) error // prepared write, when the writer is a Preparer
	deliveries []amqp.Delivery
	ends       []int // ends[i]: end of deliveries[i]'s spans in spans
	// redelivered: every delivery was redelivered (a batch holds only
	// redelivered messages or none), so its spans may be stored already.
	redelivered bool
}

func (b *batch) lastTag() uint64 { return b.deliveries[len(b.deliveries)-1].DeliveryTag }

// consumer is one channel's consume loop and its flusher.
type consumer struct {
	c        *Collector
	ch       *amqp.Channel
	parker   *broker.Parker
	held     atomic.Int64 // deliveries received and not yet acked
	base     string       // consumer tag of the first subscription
	tag      string       // of the current one
	subs     int          // subscriptions so far
	prefetch int          // current prefetch count
	window   *window      // nil: a fixed Prefetch, or cautious
	// cautiousUntil: until then one message at a time (Collector's
	// cautiousUntil); then the normal prefetch again.
	cautiousUntil time.Time
}

// normalPrefetch is the prefetch count to start with and its window (nil
// for a fixed RABBIT_PREFETCH).
func (k *consumer) normalPrefetch() (int, *window) {
	if k.c.cfg.Prefetch != 0 {
		return k.c.cfg.Prefetch, nil
	}
	return startPrefetch, &window{bytes: k.c.cfg.WindowBytes}
}

// consume runs one consumer until its delivery channel closes: after a
// basic.cancel when stopping (then every received message is committed and
// acked first), or when the channel or connection dies (then unacked
// messages go back to the queue and are de-duplicated on redelivery).
func (c *Collector) consume(ctx context.Context, conn *amqp.Connection, tag string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("consumer %s: open channel: %w", tag, err)
	}
	defer ch.Close()
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	p, err := broker.NewParker(conn, c.cfg.Broker)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", tag, err)
	}
	defer p.Close()
	k := &consumer{c: c, ch: ch, parker: p, base: tag}
	if until := c.cautiousUntil.Load(); time.Now().UnixNano() < until {
		k.prefetch, k.cautiousUntil = 1, time.Unix(0, until)
	} else {
		k.prefetch, k.window = k.normalPrefetch()
	}
	deliveries, err := k.subscribe()
	if err != nil {
		return err
	}
	c.m.consumers.Inc()
	defer c.m.consumers.Dec()
	// Whatever is still held when the channel closes goes back to RabbitMQ.
	defer func() { k.release(int(k.held.Load())) }()
	err = k.loop(ctx, deliveries)
	if err == nil && !c.isStopping() && ch.IsClosed() {
		// The channel (or its connection) died under the consumer: say why.
		err = fmt.Errorf("consumer %s: channel %w", tag, closeReason(chClosed))
	}
	return err
}

// subscribe sets the consumer's prefetch and starts consuming.
func (k *consumer) subscribe() (<-chan amqp.Delivery, error) {
	// Per-consumer prefetch (global=false): quorum queues refuse global
	// QoS. It applies to consumers started after it, hence a resize is a
	// new subscription.
	if err := k.ch.Qos(k.prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("consumer %s: qos: %w", k.tag, err)
	}
	k.c.m.prefetch.Set(float64(k.prefetch))
	// A new tag for every subscription: RabbitMQ 3.10 crashed the channel
	// (INTERNAL_ERROR) when a quorum queue's delivery to the cancelled
	// consumer arrived under a reused tag.
	k.subs++
	k.tag = k.base
	if k.subs > 1 {
		k.tag += "." + strconv.Itoa(k.subs)
	}
	deliveries, err := k.ch.Consume(k.c.cfg.Broker.Queue, k.tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: consume %s: %w", k.tag, k.c.cfg.Broker.Queue, err)
	}
	return deliveries, nil
}

// startPrefetch is the prefetch count before the window knows how large
// messages are.
const startPrefetch = 1000

// window sizes the prefetch count by bytes: RabbitMQ counts unacked
// messages, not bytes (it ignores prefetch_size), so the count follows the
// average message size.
type window struct {
	bytes int     // target unacked bytes
	avg   float64 // moving average of message sizes
	seen  int     // messages since the last decision
}

// observe records a message's size and returns the prefetch count to use
// when it should change by more than half or a third of cur.
func (w *window) observe(size, cur int) (int, bool) {
	if w.avg == 0 {
		w.avg = float64(size)
	}
	w.avg += (float64(size) - w.avg) / 64
	if w.seen++; w.seen < 256 {
		return cur, false
	}
	w.seen = 0
	want := min(max(int(float64(w.bytes)/max(w.avg, 1)), 100), 65535)
	if want > cur*3/2 || want < cur*2/3 {
		return want, true
	}
	return cur, false
}

func (k *consumer) loop(ctx context.Context, deliveries <-chan amqp.Delivery) error {
	c := k.c
	// One batch commits while the next fills; a third waits in the
	// consumer, and RabbitMQ holds the rest (prefetch): memory is bounded
	// whatever the queue depth.
	batches := make(chan *batch, 1)
	flushErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var first error
		for b := range batches {
			if first != nil {
				// An earlier batch was not acked; acking this one
				// (multiple=true) would ack that one too.
				continue
			}
			if err := k.flush(ctx, b); err != nil {
				first = err
				_ = k.ch.Close() // hand every unacked message back to RabbitMQ
			}
		}
		flushErr <- first
	}()

	// Cut a batch at half the prefetch window so the next can fill while
	// it commits.
	maxDeliveries := max(1, k.prefetch/2)
	resize := 0 // a new prefetch count, waiting for the old subscription to drain
	newBatch := func() *batch { return &batch{spans: make([]zipkin.Span, 0, c.cfg.BatchSpans+100)} }
	cur := newBatch()
	timer := time.NewTimer(c.cfg.BatchInterval)
	defer timer.Stop()
	prep, _ := c.w.(Preparer)
	send := func() {
		if len(cur.deliveries) > 0 {
			if prep != nil && !cur.redelivered {
				// An encoding failure leaves commit nil: the flusher
				// writes the batch plainly and isolates what it refuses.
				var err error
				if cur.commit, err = prep.PrepareWrite(cur.spans); err != nil {
					c.m.prepareFails.Inc()
					c.log.Warn("batch encoding failed; writing it plainly to isolate what the store refuses",
						slog.Int("spans", len(cur.spans)), slog.Any("err", err))
				}
			}
			batches <- cur
			cur = newBatch()
		}
	}
	stopping := c.stopping
	var loopErr error
loop:
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if resize == 0 || stopping == nil {
					break loop
				}
				// The old subscription handed over all it was sent:
				// subscribe again with the new size.
				k.prefetch, resize = resize, 0
				maxDeliveries = max(1, k.prefetch/2)
				if deliveries, loopErr = k.subscribe(); loopErr != nil {
					break loop
				}
				continue
			}
			k.hold()
			if !k.cautiousUntil.IsZero() && resize == 0 && time.Now().After(k.cautiousUntil) {
				// Cautious long enough: back to the normal prefetch.
				if err := k.ch.Cancel(k.tag, false); err != nil {
					loopErr = fmt.Errorf("cancel to resize: %w", err)
					break loop
				}
				resize, k.window = k.normalPrefetch()
				k.cautiousUntil = time.Time{}
			}
			if k.window != nil && resize == 0 {
				if want, change := k.window.observe(len(d.Body), k.prefetch); change {
					if err := k.ch.Cancel(k.tag, false); err != nil {
						loopErr = fmt.Errorf("cancel to resize: %w", err)
						break loop
					}
					resize = want
				}
			}
			spans, err := k.receive(d)
			if err != nil {
				if perr := k.park(ctx, d, zipkin.ReasonOf(err), err); perr != nil {
					loopErr = perr // a failed park means no ack: end the session
					break loop
				}
				continue
			}
			if len(spans) == 0 { // an empty list: nothing to store
				if err := k.ack(d); err != nil {
					loopErr = err
					break loop
				}
				continue
			}
			if c.throttle != nil {
				// Over the tenant's limit the consumer waits, and RabbitMQ
				// keeps the rest of the queue (prefetch bounds what waits here).
				if err := c.throttle.Wait(ctx, len(spans), len(d.Body)); err != nil {
					loopErr = fmt.Errorf("wait for the tenant's ingest limit: %w", err)
					break loop
				}
			}
			if len(cur.deliveries) > 0 && cur.redelivered != d.Redelivered {
				send() // redelivered messages are written apart (flush)
			}
			if len(cur.deliveries) == 0 {
				timer.Reset(c.cfg.BatchInterval)
				cur.redelivered = d.Redelivered
			}
			cur.spans = append(cur.spans, spans...)
			cur.deliveries = append(cur.deliveries, d)
			cur.ends = append(cur.ends, len(cur.spans))
			if len(cur.spans) >= c.cfg.BatchSpans || len(cur.deliveries) >= maxDeliveries {
				send()
			}
		case <-timer.C:
			send()
		case <-stopping:
			// Cancel, then keep reading: the delivery channel closes once
			// the messages already sent to us have been handed over.
			stopping = nil
			if resize != 0 {
				continue // already cancelled: drain, then end instead of resubscribing
			}
			if err := k.ch.Cancel(k.tag, false); err != nil {
				loopErr = fmt.Errorf("cancel: %w", err)
				break loop
			}
		}
	}
	if loopErr == nil && !k.ch.IsClosed() {
		send()
	}
	close(batches)
	wg.Wait()
	return errors.Join(loopErr, <-flushErr)
}

// receive counts and decodes one delivery.
func (k *consumer) receive(d amqp.Delivery) ([]zipkin.Span, error) {
	m := k.c.m
	m.messages.Inc()
	spans, tally, err := k.c.dec.DecodeMessage(d.Body, d.ContentType, d.ContentEncoding)
	if err != nil { // parked whole: nothing was left out of a stored message
		m.decodeErrors.WithLabelValues(string(zipkin.ReasonOf(err))).Inc()
		return nil, err
	}
	m.rejected.Add(float64(tally.Rejected))
	m.received.Add(uint64(len(spans) + tally.SampledOut))
	m.sampledOut.Add(float64(tally.SampledOut))
	m.truncated.Add(float64(tally.Truncated))
	return spans, nil
}

func (k *consumer) park(ctx context.Context, d amqp.Delivery, reason zipkin.Reason, cause error) error {
	if err := k.parker.Park(ctx, d, reason, cause); err != nil {
		return err
	}
	k.c.m.parked.WithLabelValues(string(reason)).Inc()
	k.c.log.Warn("message parked", slog.String("queue", k.c.cfg.Broker.Queue), slog.String("reason", string(reason)),
		slog.Any("err", cause), slog.Int("bytes", len(d.Body)))
	return k.ack(d)
}

// hold counts a delivery received; ack and release count it done.
func (k *consumer) hold() {
	k.held.Add(1)
	k.c.m.held.Add(1)
}

func (k *consumer) release(n int) {
	k.held.Add(-int64(n))
	k.c.m.held.Add(-int64(n))
}

// ack acknowledges one delivery.
func (k *consumer) ack(d amqp.Delivery) error {
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	k.release(1)
	k.c.progress()
	return nil
}

// flush writes a batch until it commits, then acks it. Storage errors are
// retried with backoff for as long as it takes — the messages stay unacked
// in RabbitMQ meanwhile — unless the work context ends or the channel dies
// (no ack is possible then; RabbitMQ redelivers). Data the store refuses
// outright is split per message, and the offending messages are parked.
func (k *consumer) flush(ctx context.Context, b *batch) error {
	c := k.c
	delay := c.cfg.RetryMin
	for {
		start := time.Now()
		var err error
		if b.commit != nil {
			err = b.commit(ctx)
		} else {
			err = c.write(ctx, b.spans, b.redelivered)
		}
		if err == nil {
			c.m.commitSeconds.Observe(time.Since(start).Seconds())
			c.m.batchSpans.Observe(float64(len(b.spans)))
			c.m.stored.Add(uint64(len(b.spans)))
			if err := k.ch.Ack(b.lastTag(), true); err != nil {
				return fmt.Errorf("ack batch: %w", err)
			}
			k.release(len(b.deliveries))
			c.progress()
			return nil
		}
		if isPermanent(err) {
			return k.isolate(ctx, b, err)
		}
		c.writeFailed(err)
		if ctx.Err() != nil || k.ch.IsClosed() {
			return fmt.Errorf("batch of %d spans not committed: %w", len(b.spans), err)
		}
		c.m.retries.Inc()
		c.log.Warn("batch write failed; retrying", slog.Int("spans", len(b.spans)),
			slog.Duration("backoff", delay), slog.Any("err", err))
		if !sleepCtx(ctx, delay) {
			return fmt.Errorf("batch of %d spans not committed: %w", len(b.spans), ctx.Err())
		}
		delay = min(2*delay, c.cfg.RetryMax)
	}
}

// isolate writes each message of a refused batch on its own, acks those that
// commit, and within a message the store refuses stores every span it
// accepts and parks only the refused spans, so one bad span can neither
// block the queue nor take its neighbours with it.
func (k *consumer) isolate(ctx context.Context, b *batch, cause error) error {
	k.c.log.Warn("store refused a batch; writing its messages one by one", slog.Any("err", cause))
	start := 0
	for i, d := range b.deliveries {
		spans := b.spans[start:b.ends[i]]
		start = b.ends[i]
		err := k.c.write(ctx, spans, d.Redelivered)
		switch {
		case err == nil:
			k.c.m.stored.Add(uint64(len(spans)))
			if err := k.ack(d); err != nil {
				return err
			}
		case isPermanent(err):
			if err := k.isolateSpans(ctx, d, spans, err); err != nil {
				return err
			}
		default:
			return fmt.Errorf("isolate refused batch: %w", err) // transient: let RabbitMQ redeliver
		}
	}
	return nil
}

// isolateSpans writes a refused message's spans one by one and parks a
// message of only those the store refuses (JSON v2, the original headers
// kept), then acks the original. A lone span's message is parked as it is.
func (k *consumer) isolateSpans(ctx context.Context, d amqp.Delivery, spans []zipkin.Span, cause error) error {
	if len(spans) == 1 {
		return k.park(ctx, d, broker.ReasonStoreRejected, cause)
	}
	var refused []zipkin.Span
	var why error
	for i := range spans {
		err := k.c.write(ctx, spans[i:i+1], d.Redelivered)
		switch {
		case err == nil:
			k.c.m.stored.Add(1)
		case isPermanent(err):
			refused = append(refused, spans[i])
			why = errors.Join(why, fmt.Errorf("span %s: %w", spans[i].ID, err))
		default:
			return fmt.Errorf("isolate refused spans: %w", err) // transient: redelivered, stored spans absorbed
		}
	}
	if len(refused) == 0 {
		return k.ack(d) // refused only together: every span is stored now
	}
	part := d
	part.Body, part.ContentType, part.ContentEncoding = zipkin.EncodeJSON(refused), "application/json", ""
	if err := k.parker.Park(ctx, part, broker.ReasonStoreRejected, why); err != nil {
		return err
	}
	k.c.m.parked.WithLabelValues(string(broker.ReasonStoreRejected)).Inc()
	k.c.log.Warn("spans parked", slog.String("queue", k.c.cfg.Broker.Queue), slog.String("reason", string(broker.ReasonStoreRejected)),
		slog.Any("err", why), slog.Int("spans", len(refused)), slog.Int("stored", len(spans)-len(refused)))
	return k.ack(d)
}

// write stores spans, telling the writer when they come from redelivered
// messages.
func (c *Collector) write(ctx context.Context, spans []zipkin.Span, redelivered bool) error {
	if rw, ok := c.w.(RedeliveryWriter); ok && redelivered {
		return rw.WriteRedelivered(ctx, spans)
	}
	return c.w.WriteSpans(ctx, spans)
}

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
